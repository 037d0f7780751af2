"""The compact model (numpy only): the same probabilities and labels as the scikit-learn
pipeline it was made from, safe files (a changed byte or a pickled object is refused), a
loader that never imports scikit-learn, scipy or skops, and the skops fallback for models
saved before the compact form existed."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from classifiers import export, hashing, loader, upgrade
from classifiers.compact import CompactModel
from classifiers.config import ClassifierConfig
from classifiers.export import PROBE_TEXTS
from classifiers.files import (
    COMPACT_FILE,
    INFO_FILE,
    MODEL_FILE,
    ModelInfo,
    ModelIntegrityError,
    ModelNotFoundError,
    read_compact,
    read_info,
    read_model,
    read_predictor,
    sha256_file,
)
from classifiers.model import DESIGNS
from classifiers.predict import ModelClassifier
from classifiers.safety import SafetyNet, shipped_rules
from classifiers.store import ModelStore, shipped_dir
from classifiers.text import model_text
from classifiers.train import Example, build_info, evaluate, fit, packaged_data, read_examples
from classifiers.types import LABELS, ClassifierInput

REPO = Path(__file__).resolve().parent.parent
ATOL = 1e-9


def _subset(name: str, labels: tuple[str, ...], per_label: int) -> list[Example]:
    examples = read_examples(packaged_data(name))
    return [e for label in labels for e in [x for x in examples if x.label == label][:per_label]]


@pytest.fixture(scope="module")
def heldout_texts() -> list[str]:
    return [model_text(e.subject, e.body) for e in read_examples(packaged_data("heldout"))]


@pytest.fixture(scope="module")
def safety() -> SafetyNet:
    return SafetyNet(shipped_rules())


def assert_same_predictions(pipeline: Pipeline, model: CompactModel, texts: list[str]) -> None:
    expected = pipeline.predict_proba(texts)
    got = model.predict_proba(texts)
    assert got.shape == expected.shape == (len(texts), len(model.classes_))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert model.classes_ == tuple(str(c) for c in pipeline.classes_)


def test_the_shipped_compact_model_predicts_like_the_shipped_pipeline(
    heldout_texts: list[str], safety: SafetyNet
) -> None:
    pipeline = read_model(shipped_dir()).pipeline
    loaded = read_compact(shipped_dir())
    assert loaded.info == read_info(shipped_dir())
    assert_same_predictions(pipeline, loaded.model, heldout_texts)
    # And so the daemon's whole result (label, confidence, review, safety net) is the same.
    items = [ClassifierInput(e.subject, e.body) for e in read_examples(packaged_data("heldout"))]
    version = loaded.info.version
    compact = ModelClassifier(loaded.model, version, safety, 0.5).classify(items)
    full = ModelClassifier(pipeline, version, safety, 0.5).classify(items)
    # Probabilities may differ in their last bit (see assert_same_predictions); all else is
    # the same.
    assert [replace(c, confidence=0.0, complaint_probability=0.0) for c in compact] == [
        replace(c, confidence=0.0, complaint_probability=0.0) for c in full
    ]
    for one, other in zip(compact, full, strict=True):
        assert abs(one.confidence - other.confidence) <= 1e-12
        assert abs(one.complaint_probability - other.complaint_probability) <= 1e-12


def test_the_shipped_metadata_records_the_compact_file() -> None:
    info = read_info(shipped_dir())
    assert info.compact_sha256 == sha256_file(shipped_dir() / COMPACT_FILE)
    assert info.model_sha256 == sha256_file(shipped_dir() / MODEL_FILE)
    assert read_predictor(shipped_dir()).compact


# Two designs, six labels and two (the binary code paths of both).
CASES = [(design, labels) for design in DESIGNS for labels in (LABELS, ("complaint", "feedback"))]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{len(c[1])}-labels")
def trained(request: pytest.FixtureRequest) -> Pipeline:
    """A freshly trained pipeline (20 messages per label)."""
    design, labels = request.param
    return fit(_subset("train", labels, 20), design)


def test_freshly_trained_models_predict_the_same_in_compact_form(
    trained: Pipeline, heldout_texts: list[str]
) -> None:
    model = export.from_pipeline(trained)
    assert_same_predictions(trained, model, heldout_texts)
    assert_same_predictions(trained, model, list(PROBE_TEXTS))
    # Through the file format too, and the bytes are the same every time.
    data = model.to_bytes()
    assert data == export.from_pipeline(trained).to_bytes()
    assert_same_predictions(trained, CompactModel.from_bytes(data), heldout_texts)


def test_batches_of_every_size_give_the_same_rows(trained: Pipeline) -> None:
    model = export.from_pipeline(trained)
    texts = [*PROBE_TEXTS, "", "Bins not collected again", "\ud800 lone surrogate \udfff"]
    whole = model.predict_proba(texts)
    assert_same_predictions(trained, model, texts)
    one_by_one = np.vstack([model.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(one_by_one, whole, rtol=0, atol=ATOL)
    assert model.predict_proba([]).shape == (0, len(model.classes_))
    assert np.allclose(whole.sum(axis=1), 1.0)


def test_the_bucket_index_finds_what_binary_search_finds() -> None:
    rng = np.random.default_rng(0)
    n_buckets = 2**12
    kept = np.unique(
        np.concatenate([rng.integers(0, n_buckets, 500), [0, 63, 64, 127, n_buckets - 1]])
    ).astype(np.uint64)
    found = rng.integers(0, 7, 20_000).astype(np.uint64) * np.uint64(n_buckets) + rng.integers(
        0, n_buckets, 20_000
    ).astype(np.uint64)
    index = hashing.bucket_index(kept, n_buckets)
    assert index is not None
    indexed, searched = (
        hashing.counts(found, n_buckets, kept, index),
        hashing.counts(found, n_buckets, kept),
    )
    assert len(searched.columns) > 1000
    for a, b in zip(indexed, searched, strict=True):
        assert np.array_equal(a, b)
    assert hashing.bucket_index(kept, hashing.MAX_BITMAP_BUCKETS * 2) is None


@pytest.fixture(scope="module")
def small() -> tuple[Pipeline, ModelInfo]:
    examples = _subset("train", LABELS, 8)
    pipeline = fit(examples)
    safety = SafetyNet(shipped_rules())
    metrics = evaluate(
        ModelClassifier(pipeline, "small", safety, 0.5), _subset("heldout", LABELS, 3)
    )
    return pipeline, build_info(pipeline, "svm-sigmoid", examples, metrics)


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "state")


def _save(store: ModelStore, small: tuple[Pipeline, ModelInfo], version: str) -> Path:
    pipeline, info = small
    saved = store.save(pipeline, info.model_copy(update={"version": version}))
    directory = store.root / version
    assert saved.compact_sha256 == sha256_file(directory / COMPACT_FILE)
    return directory


def _forge(directory: Path, **update: object) -> None:
    """Rewrite model.json as an attacker who can also fix the recorded sha256s would."""
    info = read_info(directory).model_copy(update=update)
    (directory / INFO_FILE).write_text(info.model_dump_json())


def test_a_compact_file_with_one_byte_changed_is_refused(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    directory = _save(store, small, "v1")
    path = directory / COMPACT_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"model\.npz: sha256 .* does not match"):
        store.load_predictor("v1")
    with pytest.raises(ModelIntegrityError):
        store.promote("v1")  # never made current either
    assert store.current() is None


def _npz(arrays: dict[str, np.ndarray], allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as handle:
                np.lib.format.write_array(handle, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x04 not a zip, maybe a pickle", "not a readable"),
        (_npz({"meta": np.array([object()], dtype=object)}, allow_pickle=True), "not a readable"),
        (_npz({"coef": np.zeros((2, 2))}), "not a readable"),
    ],
    ids=["not-npz", "pickled-object", "missing-arrays"],
)
def test_a_compact_file_that_is_not_a_compact_model_is_refused(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], content: bytes, message: str
) -> None:
    directory = _save(store, small, "v1")
    (directory / COMPACT_FILE).write_bytes(content)
    _forge(directory, compact_sha256=hashlib.sha256(content).hexdigest())
    with pytest.raises(ModelIntegrityError, match=message):
        store.load_predictor("v1")


def test_a_compact_file_for_other_labels_is_refused(
    store: ModelStore, small: tuple[Pipeline, ModelInfo]
) -> None:
    directory = _save(store, small, "v1")
    other = fit(_subset("train", ("complaint", "feedback"), 10))
    data = export.from_pipeline(other).to_bytes()
    (directory / COMPACT_FILE).write_bytes(data)
    _forge(directory, compact_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(ModelIntegrityError, match="not a Candour classifier"):
        store.load_predictor("v1")


def test_a_model_saved_before_the_compact_form_loads_through_skops(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], safety: SafetyNet
) -> None:
    directory = _save(store, small, "v1")
    (directory / COMPACT_FILE).unlink()
    old = json.loads((directory / INFO_FILE).read_text())
    del old["compact_sha256"]  # as written before the field existed
    (directory / INFO_FILE).write_text(json.dumps(old, indent=2))
    loaded = store.load_predictor("v1")
    assert not loaded.compact
    assert loaded.info.compact_sha256 is None
    assert isinstance(loaded.predictor, Pipeline)
    with pytest.raises(ModelNotFoundError, match=r"records no model\.npz"):
        read_compact(directory)
    store.promote("v1")
    classifier = loader.load_classifier(store.root.parent, ClassifierConfig())
    assert classifier.classify([ClassifierInput("Bins", "Missed again.")])[0].model_version == "v1"


def test_a_pipeline_without_a_compact_form_is_saved_with_skops_only(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(pipeline: object) -> CompactModel:
        raise ValueError("unsupported final step")

    monkeypatch.setattr(export, "from_pipeline", unsupported)
    pipeline, info = small
    with pytest.warns(RuntimeWarning, match=r"saving without model\.npz: unsupported"):
        saved = store.save(pipeline, info.model_copy(update={"version": "v1"}))
    assert saved.compact_sha256 is None
    assert not (store.root / "v1" / COMPACT_FILE).exists()
    assert not store.load_predictor("v1").compact


def test_the_compact_command_adds_the_compact_form_to_a_model_directory(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _save(store, small, "v1")
    expected = (directory / COMPACT_FILE).read_bytes()
    before = read_info(directory)
    (directory / COMPACT_FILE).unlink()
    _forge(directory, compact_sha256=None)
    assert upgrade.main([str(directory)]) == 0
    assert "0 different labels" in capsys.readouterr().out
    assert (directory / COMPACT_FILE).read_bytes() == expected  # deterministic
    assert read_info(directory) == before  # only compact_sha256 was added back
    assert upgrade.main([]) == 2


def test_unsupported_pipelines_are_refused_by_name() -> None:
    class Other:
        classes_ = ("complaint", "feedback")

    pipeline = Pipeline([("features", "passthrough"), ("model", "passthrough")])
    with pytest.raises(ValueError, match="not a fitted Candour pipeline"):
        export.from_pipeline(pipeline)
    with pytest.raises(ValueError, match="not a fitted Candour pipeline"):
        export.from_pipeline(Other())


NO_SKLEARN = """
import json, sys
from pathlib import Path
import classifiers.loader
from classifiers.types import ClassifierInput
from classifiers.config import ClassifierConfig

classifier = classifiers.loader.load_classifier(Path(sys.argv[1]), ClassifierConfig())
results = classifier.classify([
    ClassifierInput("Waiting times", "I waited three hours at the clinic and want an answer."),
    ClassifierInput("Thank you", "The nurses on ward 7 were wonderful with my dad."),
])
print(json.dumps({
    "version": classifier.version,
    "labels": [r.label for r in results],
    "loaded": sorted(m for m in ("sklearn", "skops", "scipy") if m in sys.modules),
}))
"""


@pytest.mark.parametrize("promoted", [False, True], ids=["shipped", "promoted"])
def test_the_loader_never_imports_sklearn_skops_or_scipy(
    store: ModelStore, small: tuple[Pipeline, ModelInfo], promoted: bool
) -> None:
    expected = read_info(shipped_dir()).version
    if promoted:
        _save(store, small, "v1")
        store.promote("v1")
        expected = "v1"
    out = subprocess.run(
        [sys.executable, "-c", NO_SKLEARN, str(store.root.parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=REPO,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["version"] == expected
    assert len(report["labels"]) == 2
    assert set(report["labels"]) <= set(LABELS)
    assert report["loaded"] == []
