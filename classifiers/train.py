"""Training and evaluation: labelled examples in, a fitted pipeline and held-out metrics out.

`python -m classifiers.train compare` prints the design comparison in classifiers/README.md;
`python -m classifiers.train ship` retrains the model shipped in classifiers/model_files/
(model.skops, its compact form model.npz, and model.json).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.metrics import precision_recall_fscore_support
from sklearn.pipeline import Pipeline
from tqdm import tqdm

from classifiers.files import COMPACT_FILE, INFO_FILE, MODEL_FILE, ModelInfo, write_model
from classifiers.model import DEFAULT_DESIGN, DESIGNS, ModelClassifier
from classifiers.safety import SafetyNet, shipped_rules
from classifiers.store import new_version, shipped_dir
from classifiers.text import model_text
from classifiers.types import LABELS, Classification, Classifier, ClassifierInput

DEFAULT_REVIEW_BELOW = 0.5


class DataError(Exception):
    """A labelled data file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    """One labelled message."""

    label: str
    subject: str
    body: str


def packaged_data(name: str) -> Path:
    """The path of classifiers/data/<name>.jsonl ("train" or "heldout") in the package."""
    return Path(str(resources.files("classifiers") / "data" / f"{name}.jsonl"))


def parse_example(line: str) -> Example:
    """Parse one JSON line {label, subject, body}. Raises ValueError saying what is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    label, subject, body = data.get("label"), data.get("subject", ""), data.get("body")
    if label not in LABELS:
        raise ValueError(f"label must be one of {', '.join(LABELS)}; got {label!r}")
    if not isinstance(subject, str) or not isinstance(body, str):
        raise ValueError("subject and body must be strings (body is required)")
    return Example(label, subject, body)


def read_examples(path: Path) -> list[Example]:
    """Read a JSON-lines file of labelled messages. Raises DataError naming file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            examples.append(parse_example(line))
        except ValueError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
    if not examples:
        raise DataError(f"{path}: no labelled messages")
    return examples


def data_sha256(examples: Sequence[Example]) -> str:
    """A fingerprint of a training set: sha256 over its canonical JSON lines, in order."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(asdict(example), sort_keys=True).encode("utf-8") + b"\n")
    return digest.hexdigest()


def fit(
    examples: Sequence[Example], design: str = DEFAULT_DESIGN, progress: bool = False
) -> Pipeline:
    """Fit the pipeline of `design` on `examples`; returns it. Raises KeyError for an
    unknown design and ValueError when fewer than two labels (or too few examples per
    label for 5-fold calibration) are given."""
    _, make_features, make_classifier = DESIGNS[design]
    labels = [e.label for e in examples]
    counts = {label: labels.count(label) for label in set(labels)}
    if len(counts) < 2 or min(counts.values()) < 5:
        raise ValueError(f"need at least two labels with 5+ examples each; got {counts}")
    with tqdm(total=3, desc="training", unit="step", disable=not progress) as bar:
        bar.set_postfix_str("preparing text")
        texts = [model_text(e.subject, e.body) for e in examples]
        bar.update()
        bar.set_postfix_str("word and character features")
        features = make_features()
        matrix = features.fit_transform(texts)
        bar.update()
        bar.set_postfix_str("classifier and 5-fold calibration")
        classifier = make_classifier().fit(matrix, labels)
        bar.update()
    return Pipeline([("features", features), ("model", classifier)])


@dataclass(frozen=True)
class Metrics:
    """How a classifier did on a labelled set."""

    examples: int
    labels: tuple[str, ...]
    per_class: dict[str, dict[str, float]]
    macro_f1: float
    accuracy: float
    review_rate: float
    confusion: list[list[int]]  # rows: true label, columns: predicted, in `labels` order
    safeguarding_caught: float | None  # of safeguarding messages, labelled or flagged
    flag_rate_others: float | None  # of the other messages, flagged safeguarding

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def report(self) -> str:
        """A plain-text table of per-class scores, the summary and the confusion matrix."""
        width = max(len(label) for label in self.labels) + 2
        lines = [f"{'':{width}}precision  recall      f1  support"]
        for label in self.labels:
            row = self.per_class[label]
            lines.append(
                f"{label:{width}}{row['precision']:9.3f}{row['recall']:8.3f}"
                f"{row['f1']:8.3f}{int(row['support']):9d}"
            )
        lines.append(
            f"\nmacro-F1 {self.macro_f1:.3f}   accuracy {self.accuracy:.3f}   "
            f"sent to review {self.review_rate:.1%}   ({self.examples} messages)"
        )
        if self.safeguarding_caught is not None:
            lines.append(f"safeguarding labelled or flagged {self.safeguarding_caught:.1%}")
        if self.flag_rate_others is not None:
            lines.append(f"safeguarding flag on other messages {self.flag_rate_others:.1%}")
        short = [label[:6] for label in self.labels]
        lines.append("\nconfusion (rows: true, columns: predicted)")
        lines.append(f"{'':{width}}" + "".join(f"{s:>8}" for s in short))
        for label, counts in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:{width}}" + "".join(f"{n:8d}" for n in counts))
        return "\n".join(lines)


def classify_all(
    classifier: Classifier, examples: Sequence[Example], batch_size: int = 500
) -> list[Classification]:
    """Classify `examples` as the daemon would (safety net and signals included)."""
    results: list[Classification] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        results += classifier.classify([ClassifierInput(e.subject, e.body) for e in batch])
    return results


def evaluate(classifier: Classifier, examples: Sequence[Example], batch_size: int = 500) -> Metrics:
    """Classify `examples` as the daemon would (safety net included); returns the metrics."""
    return metrics_of(examples, classify_all(classifier, examples, batch_size))


def metrics_of(examples: Sequence[Example], results: Sequence[Classification]) -> Metrics:
    """The metrics of `results`, the classifications of `examples` in order."""
    truth = [e.label for e in examples]
    predicted = [r.label for r in results]
    labels = tuple(label for label in LABELS if label in set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(labels), zero_division=0
    )
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": float(support[i]),
        }
        for i, label in enumerate(labels)
    }
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    flagged = ["safeguarding" in r.flags for r in results]
    caught = [f or p == "safeguarding" for f, p in zip(flagged, predicted, strict=True)]
    risky = [t == "safeguarding" for t in truth]
    others = [f for f, r in zip(flagged, risky, strict=True) if not r]
    return Metrics(
        examples=len(examples),
        labels=labels,
        per_class=per_class,
        macro_f1=float(np.mean([per_class[t]["f1"] for t in labels if t in set(truth)])),
        accuracy=float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])),
        review_rate=float(np.mean([r.needs_review for r in results])),
        confusion=confusion.tolist(),
        safeguarding_caught=(
            float(np.mean([c for c, r in zip(caught, risky, strict=True) if r]))
            if any(risky)
            else None
        ),
        flag_rate_others=float(np.mean(others)) if others else None,
    )


def build_info(
    pipeline: Pipeline, design: str, examples: Sequence[Example], metrics: Metrics
) -> ModelInfo:
    """Metadata for a freshly trained pipeline (model_sha256 is filled in when saved)."""
    trained_at = datetime.now(UTC)
    return ModelInfo(
        version=new_version(trained_at),
        trained_at=trained_at.isoformat(timespec="seconds"),
        design=design,
        labels=tuple(str(c) for c in pipeline.classes_),
        training_data_sha256=data_sha256(examples),
        training_examples=len(examples),
        heldout_metrics=json.loads(json.dumps(metrics.as_dict())),  # as stored: lists, not tuples
        model_sha256="",
        sklearn_version=sklearn.__version__,
        skops_version=metadata.version("skops"),
    )


def train_and_evaluate(
    examples: Sequence[Example],
    heldout: Sequence[Example],
    safety: SafetyNet,
    design: str = DEFAULT_DESIGN,
    review_below: float = DEFAULT_REVIEW_BELOW,
    progress: bool = False,
) -> tuple[Pipeline, ModelInfo, Metrics]:
    """Fit on `examples`, evaluate on `heldout`; returns the pipeline, its metadata and
    its held-out metrics. Raises ValueError (see fit)."""
    pipeline = fit(examples, design, progress)
    metrics = evaluate(ModelClassifier(pipeline, "candidate", safety, review_below), heldout)
    return pipeline, build_info(pipeline, design, examples, metrics), metrics


def comparison_table(rows: Sequence[tuple[str, Metrics]]) -> str:
    """A Markdown table: per-class P/R/F1, macro-F1 and review rate for each design."""
    header = "| design | " + " | ".join(f"{label} P/R/F1" for label in LABELS)
    header += " | macro-F1 | review rate | safeguarding caught | flag on others |"
    lines = [header, "|" + "---|" * (len(LABELS) + 5)]
    for name, m in rows:
        cells = [
            "{precision:.3f}/{recall:.3f}/{f1:.3f}".format(**m.per_class[label])
            if label in m.per_class
            else "-"
            for label in LABELS
        ]
        caught = f"{m.safeguarding_caught:.1%}" if m.safeguarding_caught is not None else "-"
        flagged = f"{m.flag_rate_others:.1%}" if m.flag_rate_others is not None else "-"
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | **{m.macro_f1:.3f}** | "
            f"{m.review_rate:.1%} | {caught} | {flagged} |"
        )
    return "\n".join(lines)


def _compare() -> None:
    """Each design on the held-out split and on the independent set (written apart)."""
    train = read_examples(packaged_data("train"))
    scored_on = {name: read_examples(packaged_data(name)) for name in ("heldout", "independent")}
    safety = SafetyNet(shipped_rules())
    rows: dict[str, list[tuple[str, Metrics]]] = {name: [] for name in scored_on}
    for design in DESIGNS:
        classifier = ModelClassifier(fit(train, design, progress=True), design, safety, 0.5)
        for name, examples in scored_on.items():
            rows[name].append((design, evaluate(classifier, examples)))
    for name, table in rows.items():
        print(f"\n{name} ({len(scored_on[name])} messages)\n{comparison_table(table)}")


def _ship() -> None:
    train, heldout = read_examples(packaged_data("train")), read_examples(packaged_data("heldout"))
    pipeline, info, _ = train_and_evaluate(
        train, heldout, SafetyNet(shipped_rules()), progress=True
    )
    info = info.model_copy(update={"version": f"shipped-{info.version}"})
    target = shipped_dir()
    target.mkdir(exist_ok=True)
    staging = target.with_name("model_files.new")
    final = write_model(staging, pipeline, info)
    if final.compact_sha256 is None:
        (target / COMPACT_FILE).unlink(missing_ok=True)  # no stale compact form left behind
    for name in (MODEL_FILE, COMPACT_FILE, INFO_FILE):
        if (staging / name).exists():
            (staging / name).replace(target / name)
    staging.rmdir()
    print(f"shipped model {final.version}: held-out macro-F1 {final.macro_f1:.3f}")


COMMANDS: dict[str, Callable[[], None]] = {"compare": _compare, "ship": _ship}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: python -m classifiers.train compare|ship")
    COMMANDS[sys.argv[1]]()
