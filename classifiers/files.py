"""One model directory: its files, their verification, loading and writing.

The one owner of classifier files on disk (classifiers.store decides which directory is
current). A directory holds:

    model.skops   the fitted pipeline, saved with skops (never pickle or joblib)
    model.npz     the same model in compact form (classifiers.compact): numpy arrays only,
                  predicts without scikit-learn; what the daemon loads
    model.json    ModelInfo: version, trained_at, labels, training-data sha256, held-out
                  metrics, sha256 of model.skops and of model.npz

A model is only loaded after its file's sha256 matches its metadata and skops finds no type
outside TRUSTED_TYPES in it (model.skops) or numpy finds only plain arrays in it (model.npz,
loaded with allow_pickle=False); anything else is refused with ModelIntegrityError/
UntrustedModelError. `read_predictor` (the daemon's way in) loads model.npz when the
metadata records one (`compact_sha256`) and model.skops otherwise (models saved before the
compact form existed); scikit-learn and skops are only imported for the latter.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from classifiers import export
from classifiers.compact import CompactModel
from classifiers.types import LABELS

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from classifiers.predict import Predictor

MODEL_FILE = "model.skops"
COMPACT_FILE = "model.npz"
INFO_FILE = "model.json"
# Largest difference allowed between the compact form's probabilities and the pipeline's.
COMPACT_TOLERANCE = 1e-9
# Types skops does not trust by default that a Candour model legitimately contains.
# Everything else (any other class, function or module) makes loading fail.
TRUSTED_TYPES: tuple[str, ...] = (
    "classifiers.features.CharNgramHasher",
    "classifiers.features.WordNgramHasher",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)


class ModelError(Exception):
    """A model cannot be saved, found or used; the message says which and why."""


class ModelNotFoundError(ModelError):
    """No model with that version, or its files are missing."""


class ModelIntegrityError(ModelError):
    """The model file is not the one its metadata describes (changed, truncated, corrupt)."""


class UntrustedModelError(ModelError):
    """The model file contains types outside TRUSTED_TYPES, so loading it could run code."""


class ModelInfo(BaseModel):
    """The metadata saved next to every model file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    trained_at: str
    design: str
    labels: tuple[str, ...]
    training_data_sha256: str
    training_examples: int
    heldout_metrics: dict[str, Any]
    model_sha256: str
    sklearn_version: str
    skops_version: str
    # sha256 of model.npz; None for models saved before the compact form (skops only).
    compact_sha256: str | None = None

    @property
    def macro_f1(self) -> float | None:
        value = self.heldout_metrics.get("macro_f1")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class LoadedModel:
    """A verified pipeline and its metadata."""

    pipeline: Pipeline
    info: ModelInfo


@dataclass(frozen=True)
class LoadedCompact:
    """A verified compact model and its metadata."""

    model: CompactModel
    info: ModelInfo


@dataclass(frozen=True)
class LoadedPredictor:
    """What the daemon classifies with: the compact model when there is one, else the
    pipeline from model.skops (`compact` says which)."""

    predictor: Predictor
    info: ModelInfo
    compact: bool


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of the file at `path`. Raises OSError."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """Create `path` and its missing parents 0700 whatever the umask: a model is learnt from
    complaints, and its vocabulary holds their words. One that exists is left as the admin
    made it. Raises OSError."""
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(directory, 0o700)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (0600) so readers see the old or the new file, never half."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


def read_info(directory: Path) -> ModelInfo:
    """The metadata of the model in `directory`.

    Raises ModelNotFoundError (no model.json) or ModelIntegrityError (invalid metadata).
    """
    info_path = directory / INFO_FILE
    try:
        return ModelInfo.model_validate_json(info_path.read_bytes())
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{directory}: no {INFO_FILE}") from exc
    except ValidationError as exc:
        raise ModelIntegrityError(f"{info_path}: invalid metadata: {exc}") from exc


def _check_labels(path: Path, labels: tuple[str, ...], info: ModelInfo) -> None:
    if labels != info.labels or not set(labels) <= set(LABELS):
        raise ModelIntegrityError(f"{path}: not a Candour classifier for {info.labels}")


def read_model(directory: Path) -> LoadedModel:
    """Verify and load the pipeline in `directory` (model.skops; imports scikit-learn).

    Raises ModelNotFoundError (files missing), ModelIntegrityError (metadata invalid, or
    the file's sha256 differs from it, or it is not a classifier for Candour's labels) or
    UntrustedModelError (types outside TRUSTED_TYPES).
    """
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    info, model_path = read_info(directory), directory / MODEL_FILE
    try:
        actual = sha256_file(model_path)
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{directory}: no {Path(exc.filename).name}") from exc
    if actual != info.model_sha256:
        raise ModelIntegrityError(
            f"{model_path}: sha256 {actual[:12]}... does not match {info.model_sha256[:12]}... "
            "recorded in model.json; the file was changed or damaged, refusing to load it"
        )
    try:
        found = sio.get_untrusted_types(file=model_path)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"{model_path}: not a readable skops file: {exc}") from exc
    untrusted = sorted(set(found) - set(TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelError(
            f"{model_path}: refusing to load, it contains types Candour does not trust: "
            + ", ".join(untrusted)
        )
    try:
        pipeline = sio.load(model_path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise UntrustedModelError(f"{model_path}: skops refused to load it: {exc}") from exc
    if not isinstance(pipeline, Pipeline) or not hasattr(pipeline, "predict_proba"):
        raise ModelIntegrityError(f"{model_path}: not a Candour classifier for {info.labels}")
    _check_labels(model_path, tuple(str(c) for c in getattr(pipeline, "classes_", ())), info)
    return LoadedModel(pipeline, info)


def read_compact(directory: Path) -> LoadedCompact:
    """Verify and load the compact model in `directory` (model.npz; numpy only).

    The file is read once, its sha256 checked against `compact_sha256` in the metadata,
    and those same bytes loaded with allow_pickle=False. Raises ModelNotFoundError (no
    compact form recorded, or files missing) or ModelIntegrityError (metadata invalid, the
    sha256 differs, or the file is not a compact Candour classifier for its labels).
    """
    return _read_compact(directory, read_info(directory))


def _read_compact(directory: Path, info: ModelInfo) -> LoadedCompact:
    path = directory / COMPACT_FILE
    if info.compact_sha256 is None:
        raise ModelNotFoundError(f"{directory}: the metadata records no {COMPACT_FILE}")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{directory}: no {COMPACT_FILE}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != info.compact_sha256:
        raise ModelIntegrityError(
            f"{path}: sha256 {actual[:12]}... does not match {info.compact_sha256[:12]}... "
            "recorded in model.json; the file was changed or damaged, refusing to load it"
        )
    try:
        model = CompactModel.from_bytes(data)
    except ValueError as exc:
        raise ModelIntegrityError(f"{path}: not a readable compact model: {exc}") from exc
    _check_labels(path, model.classes_, info)
    return LoadedCompact(model, info)


def read_predictor(directory: Path) -> LoadedPredictor:
    """The model in `directory` as the daemon uses it: model.npz when the metadata records
    one (scikit-learn, scipy and skops are not imported), else model.skops.

    Raises ModelError (see read_compact and read_model); a changed model.npz is refused,
    never replaced by model.skops.
    """
    info = read_info(directory)
    if info.compact_sha256 is not None:
        compact = _read_compact(directory, info)
        return LoadedPredictor(compact.model, compact.info, compact=True)
    loaded = read_model(directory)
    return LoadedPredictor(loaded.pipeline, loaded.info, compact=False)


def compact_form(pipeline: Pipeline) -> CompactModel:
    """The compact form of `pipeline`, checked to predict like it on PROBE_TEXTS.

    Raises ValueError when its structure is not supported or the probabilities differ.
    """
    model = export.from_pipeline(pipeline)
    largest, differing = export.differences(model, pipeline, export.PROBE_TEXTS)
    if largest > COMPACT_TOLERANCE or differing:
        raise ValueError(
            f"its probabilities differ from the pipeline's by up to {largest:.2e} "
            f"({differing} different labels)"
        )
    return model


def write_model(directory: Path, pipeline: Pipeline, info: ModelInfo) -> ModelInfo:
    """Save `pipeline` (model.skops, and model.npz when it has a compact form) and its
    metadata into the new directory `directory`; returns the metadata with the files'
    sha256 filled in. Raises OSError."""
    import skops.io as sio

    private_dir(directory.parent)
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    model_path = directory / MODEL_FILE
    sio.dump(pipeline, model_path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.chmod(model_path, 0o600)  # skops writes it as the umask says
    compact_sha256 = None
    try:
        data = compact_form(pipeline).to_bytes()
    except ValueError as exc:
        # Still a usable model (loaded from model.skops, the slower way): say so, loudly.
        warnings.warn(f"saving without {COMPACT_FILE}: {exc}", RuntimeWarning, stacklevel=2)
    else:
        atomic_write(directory / COMPACT_FILE, data)
        compact_sha256 = hashlib.sha256(data).hexdigest()
    final = info.model_copy(
        update={"model_sha256": sha256_file(model_path), "compact_sha256": compact_sha256}
    )
    _write_info(directory, final)
    return final


def _write_info(directory: Path, info: ModelInfo) -> None:
    atomic_write(directory / INFO_FILE, info.model_dump_json(indent=2).encode("utf-8") + b"\n")


def add_compact(directory: Path) -> ModelInfo:
    """Write model.npz for the (verified) model.skops in `directory` and record its sha256
    in model.json, every other field unchanged; returns the new metadata. For models saved
    before the compact form existed, and the shipped model (`python -m classifiers.upgrade`).

    Raises ModelError (see read_model), ValueError when the pipeline has no compact form
    that predicts like it, or OSError.
    """
    loaded = read_model(directory)
    data = compact_form(loaded.pipeline).to_bytes()
    atomic_write(directory / COMPACT_FILE, data)
    final = loaded.info.model_copy(update={"compact_sha256": hashlib.sha256(data).hexdigest()})
    _write_info(directory, final)
    return final
