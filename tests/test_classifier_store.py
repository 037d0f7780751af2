"""Model versions: training on a small subset, safe saving and loading (tampered and
untrusted files refused), promote/rollback, and the daemon's loader with hot reload."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import skops.io as sio
import structlog
from click.testing import CliRunner
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from structlog.testing import capture_logs

from classifiers import loader
from classifiers.baseline import KeywordBaseline
from classifiers.compact import CompactModel
from classifiers.config import ClassifierConfig
from classifiers.files import (
    COMPACT_FILE,
    INFO_FILE,
    MODEL_FILE,
    ModelError,
    ModelInfo,
    ModelIntegrityError,
    ModelNotFoundError,
    UntrustedModelError,
    atomic_write,
    read_model,
    sha256_file,
)
from classifiers.model import ModelClassifier
from classifiers.safety import SafetyNet, shipped_rules
from classifiers.store import ModelStore, shipped_dir
from classifiers.train import (
    Example,
    build_info,
    evaluate,
    fit,
    packaged_data,
    read_examples,
)
from classifiers.types import LABELS, ClassifierInput
from daemon.cli.main import main

PER_LABEL = 8


def subset(name: str, per_label: int) -> list[Example]:
    """The first `per_label` examples of each label in a packaged data file."""
    chosen: list[Example] = []
    for label in LABELS:
        chosen += [e for e in read_examples(packaged_data(name)) if e.label == label][:per_label]
    return chosen


@pytest.fixture(scope="module")
def safety() -> SafetyNet:
    return SafetyNet(shipped_rules())


@pytest.fixture(scope="module")
def small(safety: SafetyNet) -> tuple[Pipeline, ModelInfo]:
    """A model trained on 8 messages per label, with its held-out metadata."""
    examples = subset("train", PER_LABEL)
    pipeline = fit(examples)
    metrics = evaluate(ModelClassifier(pipeline, "small", safety, 0.5), subset("heldout", 10))
    return pipeline, build_info(pipeline, "svm-sigmoid", examples, metrics)


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "state")


def _save(store: ModelStore, small: tuple[Pipeline, ModelInfo], version: str) -> ModelInfo:
    pipeline, info = small
    return store.save(pipeline, info.model_copy(update={"version": version}))


def test_training_on_a_small_subset_learns_something(
    small: tuple[Pipeline, ModelInfo], safety: SafetyNet
) -> None:
    pipeline, info = small
    assert set(info.labels) == set(LABELS)
    # Six labels: chance is ~0.17; even 48 messages must do far better on unseen ones.
    assert info.macro_f1 is not None
    assert info.macro_f1 > 0.4
    results = ModelClassifier(pipeline, "small", safety, 0.5).classify(
        [ClassifierInput("Subject access request", "Please send me all the data you hold.")]
    )
    assert results[0].label in LABELS
    assert 0.0 <= results[0].confidence <= 1.0


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("", ""),
        ("\ud800 lone surrogate", "body \udfff"),
        ("x" * 5000, "\x00" * 100),
        ("東京", "مرحبا"),
    ],
)
def test_odd_messages_never_fail_a_batch(
    small: tuple[Pipeline, ModelInfo], safety: SafetyNet, subject: str, body: str
) -> None:
    classifier = ModelClassifier(small[0], "v", safety, 0.5)
    good = ClassifierInput("Bins", "The bins were not collected.")
    results = classifier.classify([good, ClassifierInput(subject, body), good])
    assert [r.label in LABELS for r in results] == [True, True, True]
    assert results[0] == results[2]


def test_review_threshold_decides_needs_review(
    small: tuple[Pipeline, ModelInfo], safety: SafetyNet
) -> None:
    pipeline = small[0]
    item = [ClassifierInput("Bins", "The bins were not collected again this week.")]
    assert ModelClassifier(pipeline, "v", safety, 1.01).classify(item)[0].needs_review
    assert not ModelClassifier(pipeline, "v", safety, 0.0).classify(item)[0].needs_review


def test_saved_model_round_trips_with_metadata(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    saved = _save(store, small, "v1")
    directory = store.root / "v1"
    assert saved.model_sha256 == sha256_file(directory / MODEL_FILE)
    assert saved.compact_sha256 == sha256_file(directory / COMPACT_FILE)
    on_disk = json.loads((directory / INFO_FILE).read_text())
    for key in ("version", "trained_at", "labels", "training_data_sha256", "heldout_metrics"):
        assert on_disk[key]
    loaded = store.load("v1")
    assert loaded.info == saved
    assert zipfile.is_zipfile(directory / MODEL_FILE)  # skops, not pickle


def test_a_model_file_with_one_byte_changed_is_refused(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    _save(store, small, "v1")
    path = store.root / "v1" / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        store.load("v1")


class Payload(BaseEstimator):  # type: ignore[misc]
    """Stands in for a hostile object smuggled into a model file."""

    def predict_proba(self, texts: object) -> None:
        raise AssertionError("must never be loaded")


def test_a_model_file_with_an_untrusted_type_is_refused(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    saved = _save(store, small, "v1")
    directory = store.root / "v1"
    sio.dump(Payload(), directory / MODEL_FILE)
    # Metadata that matches the new file: only the trusted-types check stands in the way.
    forged = saved.model_copy(update={"model_sha256": sha256_file(directory / MODEL_FILE)})
    (directory / INFO_FILE).write_text(forged.model_dump_json())
    with pytest.raises(UntrustedModelError, match="Payload"):
        store.load("v1")


def test_a_file_that_is_not_skops_is_refused(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    saved = _save(store, small, "v1")
    directory = store.root / "v1"
    (directory / MODEL_FILE).write_bytes(b"\x80\x04 not a zip, maybe a pickle")
    forged = saved.model_copy(update={"model_sha256": sha256_file(directory / MODEL_FILE)})
    (directory / INFO_FILE).write_text(forged.model_dump_json())
    with pytest.raises(ModelIntegrityError, match="not a readable skops file"):
        store.load("v1")


def test_promote_and_rollback_walk_the_history(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    for version in ("v1", "v2"):
        _save(store, small, version)
    assert store.current() is None
    store.promote("v1")
    store.promote("v2")
    assert store.current() == "v2"
    assert [name for name, _ in store.versions()] == ["v1", "v2"]
    assert store.rollback() == "v1"
    assert store.current() == "v1"
    assert store.rollback() is None  # back to the shipped model
    assert store.current() is None
    with pytest.raises(ModelError, match="nothing to roll back"):
        store.rollback()
    assert [e["action"] for e in store.history()] == ["promote", "promote", "rollback", "rollback"]


def test_a_broken_version_is_never_made_current(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    _save(store, small, "v1")
    store.promote("v1")
    _save(store, small, "v2")
    (store.root / "v2" / MODEL_FILE).write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError):
        store.promote("v2")
    with pytest.raises(ModelNotFoundError):
        store.promote("no-such-version")
    with pytest.raises(ModelNotFoundError):
        store.promote("../v1")
    assert store.current() == "v1"


def test_the_shipped_model_verifies_and_loads() -> None:
    shipped = read_model(shipped_dir())
    assert set(shipped.info.labels) == set(LABELS)
    assert shipped.info.macro_f1 is not None
    assert (shipped_dir() / MODEL_FILE).stat().st_size < 50_000_000


def test_loader_uses_the_shipped_model_when_nothing_is_promoted(tmp_path: Path) -> None:
    classifier = loader.load_classifier(tmp_path / "state", ClassifierConfig())
    assert classifier.version == read_model(shipped_dir()).info.version
    result = classifier.classify([ClassifierInput("Thanks", "The nurses on ward 7 were kind.")])
    assert result[0].label in LABELS


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """Log capture needs structlog's defaults (an earlier CLI test may have filtered info);
    a CLI command run here configures logging for the process: undone after the test."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _compact_in_use(classifier: loader.ReloadingClassifier) -> bool:
    active = classifier.active
    return isinstance(active, ModelClassifier) and isinstance(active.pipeline, CompactModel)


def test_loader_picks_up_a_promotion_without_restart(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], safety: SafetyNet, clock: FakeClock
) -> None:
    _save(store, small, "v1")
    _save(store, small, "v2")
    store.promote("v1")
    classifier = loader.ReloadingClassifier(store, safety, 0.5, clock=clock)
    item = [ClassifierInput("Repair", "Mould in the bathroom, reported three times, private text.")]
    assert classifier.classify(item)[0].model_version == "v1"
    assert _compact_in_use(classifier)
    promoted = CliRunner().invoke(
        main, ["model", "promote", "v2", "--state-dir", str(store.root.parent)]
    )
    assert promoted.exit_code == 0, promoted.stderr
    structlog.reset_defaults()  # the command configured logging for the process
    # The daemon reads only the compact form: without model.skops, v2 still loads.
    (store.root / "v2" / MODEL_FILE).unlink()
    clock.now += 1.0  # pointer is looked at no more than every few seconds
    assert classifier.classify(item)[0].model_version == "v1"
    clock.now += loader.CHECK_EVERY_SECONDS
    with capture_logs() as events:
        assert classifier.classify(item)[0].model_version == "v2"
    assert [e["event"] for e in events] == ["classifier.reloaded"]
    assert "private text" not in json.dumps(events)
    assert _compact_in_use(classifier)


def test_a_failed_reload_keeps_the_old_model(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], safety: SafetyNet, clock: FakeClock
) -> None:
    _save(store, small, "v1")
    _save(store, small, "v2")
    store.promote("v1")
    classifier = loader.ReloadingClassifier(store, safety, 0.5, clock=clock)
    # The file the daemon reads: the compact form.
    (store.root / "v2" / COMPACT_FILE).write_bytes(b"tampered after promotion checks")
    atomic_write(store.pointer, b"v2\n")  # as if promoted by hand, bypassing the checks
    clock.now += loader.CHECK_EVERY_SECONDS
    with capture_logs() as events:
        assert classifier.version == "v1"
        assert classifier.classify([ClassifierInput("x", "y")])[0].model_version == "v1"
    assert [e["event"] for e in events] == ["classifier.reload_failed"]
    assert events[0]["kept"] == "v1"


def test_rollback_to_the_shipped_model_is_picked_up(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], safety: SafetyNet, clock: FakeClock
) -> None:
    _save(store, small, "v1")
    store.promote("v1")
    classifier = loader.ReloadingClassifier(store, safety, 0.5, clock=clock)
    store.rollback()
    clock.now += loader.CHECK_EVERY_SECONDS
    classifier.classify([ClassifierInput("x", "y")])
    assert classifier.version == read_model(shipped_dir()).info.version


@pytest.fixture
def no_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "no-shipped-model"
    empty.mkdir()
    monkeypatch.setattr(loader, "shipped_dir", lambda: empty)
    return empty


@pytest.mark.usefixtures("no_shipped_model")
def test_baseline_with_safety_net_when_no_model_loads(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "models").mkdir(parents=True)
    (state / "models" / "CURRENT").write_text("missing-version\n")
    with capture_logs() as events:
        classifier = loader.load_classifier(state, ClassifierConfig())
    names = [e["event"] for e in events]
    assert "classifier.current_unusable" in names
    assert "classifier.load_failed" in names
    assert classifier.version == KeywordBaseline.version
    result = classifier.classify(
        [ClassifierInput("Re: parking", "Also my neighbour's kids are left home alone all night.")]
    )[0]
    assert "safeguarding" in result.flags
