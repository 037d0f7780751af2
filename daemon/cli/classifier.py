"""Classifier commands for the `candour` CLI: train, model list|promote|rollback, evaluate,
classify. daemon.cli.main's group imports this module only when one of them is run.

Exit codes follow daemon.cli.main: 0 success; 1 usage, data or model problem (including a
trained model not promoted because it is worse); 2 configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import click
from click.core import ParameterSource

from classifiers.config import ClassifierConfig
from classifiers.files import LoadedPredictor, ModelError, read_predictor
from classifiers.loader import load_classifier
from classifiers.model import DEFAULT_DESIGN, DESIGNS, ModelClassifier
from classifiers.safety import RulesError, SafetyNet, load_rules
from classifiers.store import ModelStore, shipped_dir
from classifiers.train import (
    DataError,
    Example,
    classify_all,
    evaluate,
    metrics_of,
    packaged_data,
    read_examples,
    train_and_evaluate,
)
from classifiers.types import Classification, Classifier, ClassifierInput
from daemon.cli.support import EXIT_CONFIG, EXIT_PROBLEM, config_option
from daemon.cli.support import fail as _fail
from daemon.config import ConfigError, load_config

BATCH = 256

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Use this state directory instead of the configuration's (no config file needed).",
)


@dataclass(frozen=True)
class Settings:
    """What the classifier commands need from the configuration."""

    state_dir: Path
    classifier: ClassifierConfig
    database_url: str | None


# A state directory that holds no trained model: the shipped model is used.
NO_STATE = Path("/nonexistent/candour-state")


def _settings(config_path: Path, state_dir: Path | None, needs_state: bool = True) -> Settings:
    """Read the configuration. With no config file given or present, the classifier
    defaults are used with --state-dir, or (`needs_state` False: classify, evaluate) the
    shipped model. Exits with EXIT_CONFIG on a configuration error."""
    from daemon import logs  # configured here so library events go to stderr as JSON

    logs.configure("warning")
    source = click.get_current_context().get_parameter_source("config_path")
    missing = source is ParameterSource.DEFAULT and not config_path.exists()
    if missing and (state_dir is not None or not needs_state):
        return Settings(state_dir or NO_STATE, ClassifierConfig(), None)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _fail(f"configuration error:\n{exc}", EXIT_CONFIG)
    return Settings(state_dir or config.daemon.state_dir, config.classifier, config.database.url)


def _safety(settings: Settings) -> SafetyNet:
    try:
        return SafetyNet(load_rules(settings.classifier.extra_rules))
    except RulesError as exc:
        _fail(f"configuration error:\nclassifier.extra_rules: {exc}", EXIT_CONFIG)


def _examples(path: Path) -> list[Example]:
    try:
        return read_examples(path)
    except DataError as exc:
        _fail(str(exc))


def _in_use(store: ModelStore) -> tuple[str, LoadedPredictor]:
    """The model the daemon would use now (current version, else shipped), loaded as the
    daemon loads it. Raises ModelError."""
    version = store.current()
    loaded = store.load_predictor(version) if version else read_predictor(shipped_dir())
    return (version or "shipped"), loaded


def _correction_examples(settings: Settings) -> list[Example]:
    from daemon.cli.corrections import training_examples
    from models.database import Database, DatabaseError

    if settings.database_url is None:
        _fail("--include-corrections needs --config naming the [database]")
    database = Database(settings.database_url)
    try:
        database.upgrade()
        with database.reader() as session:
            rows = training_examples(session)
    except DatabaseError as exc:
        _fail(str(exc), 3)
    finally:
        database.dispose()
    return [Example(r["label"], r["subject"], r["body"]) for r in rows]


@click.command("train")
@config_option
@state_dir_option
@click.option(
    "--data",
    "data_paths",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Labelled JSON-lines file (repeatable). Default: the packaged train.jsonl.",
)
@click.option(
    "--heldout",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Held-out file to score on. Default: the packaged heldout.jsonl.",
)
@click.option(
    "--include-corrections", is_flag=True, help="Add staff corrections from the database."
)
@click.option("--force", is_flag=True, help="Make the new model current even if it scores worse.")
@click.option(
    "--design", type=click.Choice(sorted(DESIGNS)), default=DEFAULT_DESIGN, show_default=True
)
def train_command(
    config_path: Path,
    state_dir: Path | None,
    data_paths: tuple[Path, ...],
    heldout: Path | None,
    include_corrections: bool,
    force: bool,
    design: str,
) -> None:
    """Train a model, report held-out scores, save it and make it current if not worse."""
    settings = _settings(config_path, state_dir)
    safety = _safety(settings)
    examples = [e for path in data_paths or (packaged_data("train"),) for e in _examples(path)]
    if include_corrections:
        corrections = _correction_examples(settings)
        click.echo(f"adding {len(corrections)} staff correction(s)")
        examples += corrections
    scored_on = _examples(heldout or packaged_data("heldout"))
    review_below = settings.classifier.review_below
    try:
        pipeline, info, metrics = train_and_evaluate(
            examples, scored_on, safety, design, review_below, progress=True
        )
    except ValueError as exc:
        _fail(f"cannot train: {exc}")
    store = ModelStore(settings.state_dir)
    saved = store.save(pipeline, info)
    click.echo(f"held-out scores of {saved.version} ({len(scored_on)} messages):")
    click.echo(metrics.report())
    click.echo(f"saved as version {saved.version} in {store.root}")
    try:
        current, loaded = _in_use(store)
        before = evaluate(
            ModelClassifier(loaded.predictor, loaded.info.version, safety, review_below), scored_on
        )
        current_f1: float | None = before.macro_f1
    except ModelError as exc:
        click.echo(f"the model in use cannot be loaded ({exc}); nothing to compare with")
        current, current_f1 = "none", None
    new_f1 = metrics.macro_f1
    if current_f1 is not None and new_f1 < current_f1 and not force:
        _fail(
            f"not promoted: held-out macro-F1 {new_f1:.3f} is worse than {current_f1:.3f} "
            f"of the model in use ({current}). Version {saved.version} is saved; use "
            f"`candour model promote {saved.version}` or train again with --force."
        )
    store.promote(saved.version)
    was = f"{current_f1:.3f}" if current_f1 is not None else "n/a"
    click.echo(f"promoted {saved.version} (macro-F1 {new_f1:.3f}; {current} had {was})")


@click.group("model")
def model_group() -> None:
    """List, promote and roll back trained model versions."""


@model_group.command("list")
@config_option
@state_dir_option
def model_list(config_path: Path, state_dir: Path | None) -> None:
    """List saved versions; * marks the one in use."""
    store = ModelStore(_settings(config_path, state_dir).state_dir)
    current = store.current()
    try:
        shipped = read_predictor(shipped_dir()).info
        f1 = f"{shipped.macro_f1:.3f}" if shipped.macro_f1 is not None else "?"
        mark = "*" if current is None else " "
        click.echo(f"{mark} {shipped.version:<32} macro-F1 {f1}  (shipped in the package)")
    except ModelError as exc:
        click.echo(f"  shipped model unusable: {exc}")
    for name, info in store.versions():
        mark = "*" if name == current else " "
        if info is None:
            click.echo(f"{mark} {name:<32} (metadata unreadable)")
            continue
        f1 = f"{info.macro_f1:.3f}" if info.macro_f1 is not None else "?"
        click.echo(
            f"{mark} {name:<32} macro-F1 {f1}  {info.design}  trained {info.trained_at}  "
            f"on {info.training_examples} messages"
        )


@model_group.command("promote")
@config_option
@state_dir_option
@click.argument("version")
def model_promote(config_path: Path, state_dir: Path | None, version: str) -> None:
    """Make VERSION current (the daemon picks it up within seconds)."""
    store = ModelStore(_settings(config_path, state_dir).state_dir)
    try:
        store.promote(version)
    except ModelError as exc:
        _fail(f"not promoted: {exc}")
    click.echo(f"{version} is now current")


@model_group.command("rollback")
@config_option
@state_dir_option
def model_rollback(config_path: Path, state_dir: Path | None) -> None:
    """Go back to the version that was current before the last promotion."""
    store = ModelStore(_settings(config_path, state_dir).state_dir)
    try:
        version = store.rollback()
    except ModelError as exc:
        _fail(str(exc))
    click.echo(f"{version} is now current" if version else "the shipped model is now in use")


@click.command("evaluate")
@config_option
@state_dir_option
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Labelled JSON lines. Default: the packaged independent evaluation set.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def evaluate_command(
    config_path: Path, state_dir: Path | None, data_path: Path | None, as_json: bool
) -> None:
    """Score the model in use on a labelled JSON-lines file: per-class figures, the
    confusion matrix, the review rate, and what the triage gate would have done (how many
    complaints would have been signposted away on the model's word: it must be 0)."""
    from daemon.triage.gate import gate_figures

    settings = _settings(config_path, state_dir, needs_state=False)
    data_path = data_path or packaged_data("independent")
    examples = _examples(data_path)
    classifier = _classifier(settings)
    results = classify_all(classifier, examples)
    metrics = metrics_of(examples, results)
    languages = frozenset(("en",))
    gate = gate_figures([e.label for e in examples], results, settings.classifier, languages)
    if as_json:
        click.echo(
            json.dumps({"version": classifier.version, **metrics.as_dict(), "gate": asdict(gate)})
        )
    else:
        click.echo(f"model {classifier.version} on {data_path}:")
        click.echo(metrics.report())
        click.echo(gate.report())


def _classifier(settings: Settings) -> Classifier:
    try:
        return load_classifier(settings.state_dir, settings.classifier)
    except RulesError as exc:
        _fail(f"configuration error:\nclassifier.extra_rules: {exc}", EXIT_CONFIG)


def _jsonl_inputs(stream: IO[str]) -> Iterator[tuple[Any, ClassifierInput] | str]:
    """Yield (id, input) per good line, or an error message naming the line."""
    name = "<stdin>" if stream.name in ("<stdin>", "-") else stream.name
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"{name}:{number}: not JSON ({exc.msg})"
            continue
        if not isinstance(data, dict) or "id" not in data:
            yield f"{name}:{number}: expected an object with id, subject and body"
            continue
        subject, body, sender = data.get("subject", ""), data.get("body"), data.get("from_addr", "")
        if not (isinstance(subject, str) and isinstance(body, str) and isinstance(sender, str)):
            yield f"{name}:{number}: subject, body and from_addr must be strings (body required)"
            continue
        yield data["id"], ClassifierInput(subject, body, sender)


def _eml_inputs(paths: tuple[Path, ...]) -> Iterator[tuple[Any, ClassifierInput] | str]:
    from daemon.mail.parse import ParseError, parse_message

    for path in paths:
        try:
            parsed = parse_message(path.read_bytes())
        except (OSError, ParseError) as exc:
            yield f"{path}: {exc}"
            continue
        yield str(path), ClassifierInput(parsed.subject, parsed.text, parsed.sender)


def _result(item_id: Any, result: Classification) -> str:
    return json.dumps(
        {
            "id": item_id,
            "label": result.label,
            "confidence": round(result.confidence, 4),
            "needs_review": result.needs_review,
            "flags": list(result.flags),
        }
    )


@click.command("classify")
@config_option
@state_dir_option
@click.option(
    "--jsonl", type=click.File("r", encoding="utf-8"), default=None, help="JSON lines ('-': stdin)."
)
@click.argument("eml_files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
def classify_command(
    config_path: Path, state_dir: Path | None, jsonl: IO[str] | None, eml_files: tuple[Path, ...]
) -> None:
    """Classify messages: JSON lines {id, subject, body, from_addr} and/or .eml files; prints
    one JSON object per message. Bad lines are reported on stderr and skipped (exit 1)."""
    if jsonl is None and not eml_files:
        raise click.UsageError("give --jsonl FILE (or -) and/or .eml files")
    classifier = _classifier(_settings(config_path, state_dir, needs_state=False))
    problems = 0
    batch: list[tuple[Any, ClassifierInput]] = []

    def flush() -> None:
        results = classifier.classify([item for _, item in batch])
        for (item_id, _), result in zip(batch, results, strict=True):
            click.echo(_result(item_id, result))
        batch.clear()

    sources = [_jsonl_inputs(jsonl)] if jsonl is not None else []
    for entry in (e for source in [*sources, _eml_inputs(eml_files)] for e in source):
        if isinstance(entry, str):
            click.echo(f"candour: {entry}", err=True)
            problems += 1
            continue
        batch.append(entry)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    if problems:
        sys.exit(EXIT_PROBLEM)
