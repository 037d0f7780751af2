"""The classifier commands of `candour`: train (with promotion refusal), model list/promote/
rollback, evaluate --json and classify, through click's runner and one real subprocess."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result

from classifiers.files import read_model
from classifiers.model import ModelClassifier
from classifiers.safety import SafetyNet, shipped_rules
from classifiers.store import ModelStore, shipped_dir
from classifiers.train import Example, build_info, evaluate, fit, packaged_data, read_examples
from classifiers.types import LABELS
from daemon.cli.main import main

REPO = Path(__file__).resolve().parent.parent
OUTPUT_KEYS = {"id", "label", "confidence", "needs_review", "flags"}


@pytest.fixture(autouse=True)
def isolated_logging() -> Iterator[None]:
    """The CLI configures structlog and the root logger for the process; undo it after."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def _subset(name: str, per_label: int) -> list[Example]:
    examples = read_examples(packaged_data(name))
    return [e for label in LABELS for e in [x for x in examples if x.label == label][:per_label]]


def _write_examples(path: Path, examples: list[Example]) -> Path:
    lines = [json.dumps({"label": e.label, "subject": e.subject, "body": e.body}) for e in examples]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_config_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANDOUR_CONFIG", raising=False)


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny training file (8 per label) and a small held-out file (10 per label)."""
    return (
        _write_examples(tmp_path / "small-train.jsonl", _subset("train", 8)),
        _write_examples(tmp_path / "small-heldout.jsonl", _subset("heldout", 10)),
    )


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def test_train_refuses_a_worse_model_unless_forced(tmp_path: Path, data: tuple[Path, Path]) -> None:
    state = str(tmp_path / "state")
    train, heldout = str(data[0]), str(data[1])
    store = ModelStore(Path(state))

    refused = run("train", "--state-dir", state, "--data", train, "--heldout", heldout)
    assert refused.exit_code == 1
    assert "not promoted" in refused.stderr
    assert "confusion" in refused.stdout
    assert "macro-F1" in refused.stdout
    assert len(store.versions()) == 1  # saved, just not current
    assert store.current() is None

    forced = run("train", "--state-dir", state, "--data", train, "--heldout", heldout, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert store.current() == store.versions()[-1][0]

    # Same data, same (deterministic) model: not worse than the current one, so promoted.
    again = run("train", "--state-dir", state, "--data", train, "--heldout", heldout)
    assert again.exit_code == 0, again.stderr
    assert "promoted" in again.stdout
    assert store.current() == store.versions()[-1][0]
    assert len(store.versions()) == 3


def test_train_reports_a_bad_data_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "complaint", "subject": "", "body": "x"}\n{"label": "nope"}\n')
    result = run("train", "--state-dir", str(tmp_path / "state"), "--data", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:2: label must be one of" in result.stderr


def _save_small(store: ModelStore, versions: list[str]) -> None:
    examples = _subset("train", 8)
    pipeline = fit(examples)
    classifier = ModelClassifier(pipeline, "test", SafetyNet(shipped_rules()), 0.5)
    info = build_info(
        pipeline, "svm-sigmoid", examples, evaluate(classifier, _subset("heldout", 3))
    )
    for version in versions:
        store.save(pipeline, info.model_copy(update={"version": version}))


def test_model_list_promote_and_rollback(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = ModelStore(state)
    _save_small(store, ["v1", "v2"])

    listed = run("model", "list", "--state-dir", str(state))
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("* shipped-")  # nothing promoted: the shipped model is in use
    assert any(line.startswith("  v1 ") for line in lines)

    assert run("model", "promote", "v1", "--state-dir", str(state)).exit_code == 0
    assert run("model", "promote", "v2", "--state-dir", str(state)).exit_code == 0
    assert any(
        line.startswith("* v2 ")
        for line in run("model", "list", "--state-dir", str(state)).stdout.splitlines()
    )

    back = run("model", "rollback", "--state-dir", str(state))
    assert back.exit_code == 0
    assert "v1 is now current" in back.stdout
    assert store.current() == "v1"

    missing = run("model", "promote", "v9", "--state-dir", str(state))
    assert missing.exit_code == 1
    assert "not promoted" in missing.stderr
    assert store.current() == "v1"


def test_evaluate_json_scores_the_model_in_use(tmp_path: Path, data: tuple[Path, Path]) -> None:
    result = run(
        "evaluate", "--state-dir", str(tmp_path / "state"), "--data", str(data[1]), "--json"
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["version"] == read_model(shipped_dir()).info.version
    assert report["examples"] == 60
    assert 0.0 <= report["macro_f1"] <= 1.0
    assert set(report["per_class"]) <= set(LABELS)
    assert len(report["confusion"]) == len(report["labels"])
    assert sum(map(sum, report["confusion"])) == 60
    assert 0.0 <= report["review_rate"] <= 1.0


def test_classify_prints_one_json_object_per_message_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "subject": "Missed bins", "body": "Third week the bins were missed."},
        "{not json",
        {"id": "c", "subject": "no body here"},
        {
            "id": 4,
            "subject": "worried",
            "body": "My neighbour's children are left home alone every night.",
            "from_addr": "someone@example.net",
        },
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n")
    result = run("classify", "--state-dir", str(tmp_path / "state"), "--jsonl", str(source))
    assert result.exit_code == 1  # bad lines were reported
    assert f"{source}:2: not JSON" in result.stderr
    assert f"{source}:3:" in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 4]
    for obj in out:
        assert set(obj) == OUTPUT_KEYS
        assert obj["label"] in LABELS
        assert 0.0 <= obj["confidence"] <= 1.0
        assert isinstance(obj["needs_review"], bool)
    assert "safeguarding" in out[1]["flags"]


def test_classify_reads_stdin_and_eml_files(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "Pat Reader <pat@example.net>"
    mail["To"] = "complaints@example.org"
    mail["Subject"] = "Subject access request"
    mail.set_content("Please send me a copy of all the personal data you hold about me.")
    eml = tmp_path / "sar.eml"
    eml.write_bytes(bytes(mail))
    stdin = json.dumps({"id": "s1", "subject": "Thanks", "body": "Lovely staff."}) + "\n"
    result = run(
        "classify", "--state-dir", str(tmp_path / "state"), "--jsonl", "-", str(eml), stdin=stdin
    )
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["s1", str(eml)]


def test_classify_needs_some_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["classify", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--jsonl" in result.stderr


def test_python_m_daemon_classify(tmp_path: Path) -> None:
    line = json.dumps(
        {
            "id": 1,
            "subject": "Grievance",
            "body": "I want to raise a grievance about my line manager.",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "classify", "--state-dir", str(tmp_path), "--jsonl", "-"],
        input=line + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    (out,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert out["id"] == 1
    assert set(out) == OUTPUT_KEYS


def test_classify_and_evaluate_need_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CANDOUR_CONFIG", raising=False)
    line = json.dumps({"id": "x", "subject": "Ward 7", "body": "I want to make a complaint."})
    classified = run("classify", "--jsonl", "-", stdin=line + "\n")
    assert classified.exit_code == 0, classified.stderr
    assert json.loads(classified.stdout)["label"] in LABELS
    evaluated = run("evaluate", "--json")  # the packaged independent set, the shipped model
    assert evaluated.exit_code == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["version"] == read_model(shipped_dir()).info.version
    assert report["examples"] == 360
    assert report["gate"]["complaints"] == 110
    assert report["gate"]["complaints_signposted"] == 0
