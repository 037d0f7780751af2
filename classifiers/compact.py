"""The trained model in a compact form that predicts with numpy alone.

A fitted pipeline (classifiers.model DESIGNS) is, at prediction time, a handful of arrays:
the kept hash buckets and idf weights of the word and character features, the linear
model's coefficients and intercepts, and for the calibrated SVM one sigmoid (a, b) per
class. `CompactModel` holds those arrays and computes what the pipeline's predict_proba
computes, with the same operations in the same order (scikit-learn 1.9.1):

    counts     classifiers.hashing, the same functions the pipeline's hashers call
    tf-idf     per feature block: log(count) + 1, times idf, rows scaled to unit l2 norm
    decision   [words | chars] @ coef.T + intercept   (np.bincount per class, one pass)
    sigmoid    p_c = expit(-(a_c * d_c + b_c)); rows divided by their sum (uniform where
               the sum is 0); values in (1, 1 + 1e-5] set to 1   (_CalibratedClassifier)
    softmax    exp(d - max d) / sum                                 (LogisticRegression)

so the daemon's classifier process never imports scikit-learn, scipy or skops: less memory
and a start-up of a fraction of a second. Training, evaluation and the skops files stay
as they are; classifiers.store writes `model.npz` next to every `model.skops` and checks,
when it writes it, that both forms give the same probabilities.

A file is a plain `.npz` (no pickled objects; loaded with allow_pickle=False), written
deterministically: the same model gives the same bytes. classifiers.export makes one from
a fitted pipeline.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classifiers import hashing

FORMAT = "candour-compact"
FORMAT_VERSION = 1
KINDS = ("sigmoid", "softmax")
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeaturePart:
    """One block of the feature union: hashed n-grams of one analyzer, then tf-idf."""

    analyzer: str  # a key of classifiers.hashing.ANALYZERS
    ngram_range: tuple[int, int]
    n_buckets: int
    buckets: hashing.Keys  # sorted kept buckets: column i is buckets[i]
    idf: Floats  # one weight per column


class CompactModel:
    """Predicts like the fitted pipeline it was made from; numpy only.

    Same interface as the pipeline where classifiers.predict.ModelClassifier uses it:
    `classes_` and `predict_proba(texts)`.
    """

    def __init__(
        self,
        classes: Sequence[str],
        parts: Sequence[FeaturePart],
        kind: str,
        coef: Floats,
        intercept: Floats,
        calibration: tuple[Floats, Floats, npt.NDArray[np.int64]] | None = None,
    ) -> None:
        """`coef` is (rows, features), `intercept` (rows,): one row per class, or one row
        for two classes. `calibration` is (a, b, output column) per row, for "sigmoid".

        Raises ValueError when the arrays do not fit together.
        """
        self.classes_: tuple[str, ...] = tuple(str(c) for c in classes)
        self.parts: tuple[FeaturePart, ...] = tuple(parts)
        self.kind = kind
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float64)
        self.calibration = calibration
        self._check()
        self._offsets = np.cumsum([0] + [len(p.buckets) for p in self.parts])
        self._indexes = [hashing.bucket_index(p.buckets, p.n_buckets) for p in self.parts]

    def _check(self) -> None:
        n_classes, rows = len(self.classes_), self.coef.shape[0] if self.coef.ndim == 2 else -1
        if n_classes < 2 or len(set(self.classes_)) != n_classes:
            raise ValueError(f"need two or more distinct classes, got {self.classes_}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r} (expected one of {KINDS})")
        if not self.parts:
            raise ValueError("no feature parts")
        for part in self.parts:
            low, high = part.ngram_range
            if part.analyzer not in hashing.ANALYZERS:
                raise ValueError(f"unknown analyzer {part.analyzer!r}")
            if not 1 <= low <= high or not 0 < part.n_buckets < 2**40:
                raise ValueError(f"bad n-gram range {part.ngram_range} or n_buckets")
            buckets = part.buckets
            if buckets.dtype != np.uint64 or buckets.ndim != 1 or part.idf.shape != buckets.shape:
                raise ValueError("buckets must be uint64 and match idf in length")
            if len(buckets) and (
                np.any(buckets[1:] <= buckets[:-1]) or buckets[-1] >= part.n_buckets
            ):
                raise ValueError("buckets must be increasing and below n_buckets")
            if part.idf.dtype != np.float64 or not np.all(np.isfinite(part.idf)):
                raise ValueError("idf must be finite float64")
        features = sum(len(p.buckets) for p in self.parts)
        if rows not in (n_classes, 1 if n_classes == 2 else n_classes):
            raise ValueError(f"coef has {rows} rows for {n_classes} classes")
        if self.coef.shape[1] != features or self.intercept.shape != (rows,):
            raise ValueError(f"coef {self.coef.shape} / intercept do not fit {features} features")
        if not (np.all(np.isfinite(self.coef)) and np.all(np.isfinite(self.intercept))):
            raise ValueError("coef and intercept must be finite")
        if (self.kind == "sigmoid") != (self.calibration is not None):
            raise ValueError("a sigmoid model needs calibration, a softmax one none")
        if self.calibration is not None:
            a, b, columns = self.calibration
            if a.shape != (rows,) or b.shape != (rows,) or columns.shape != (rows,):
                raise ValueError("one calibration (a, b, column) per coef row")
            if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                raise ValueError("calibration must be finite")
            if len(set(columns.tolist())) != rows or not np.all(
                (columns >= 0) & (columns < n_classes)
            ):
                raise ValueError("calibration columns must be distinct class columns")

    # -- prediction -----------------------------------------------------------------------

    def _tfidf(self, i: int, texts: Sequence[str]) -> hashing.Counts:
        """TfidfTransformer(sublinear_tf=True) of block i: l2-normalised rows."""
        n, part = len(texts), self.parts[i]
        found = hashing.counts(
            hashing.keys(part.analyzer, texts, part.ngram_range, part.n_buckets),
            part.n_buckets,
            part.buckets,
            self._indexes[i],
        )
        values = np.log(found.values)
        values += 1.0
        values *= part.idf[found.columns]
        # bincount adds in array order, as sklearn's row loop does: the same sums.
        norms = np.sqrt(np.bincount(found.documents, weights=values * values, minlength=n))
        norms[norms == 0.0] = 1.0  # empty rows stay as they are
        values /= norms[found.documents]
        return hashing.Counts(found.documents, found.columns, values)

    def decision_function(self, texts: Sequence[str]) -> Floats:
        """X @ coef.T + intercept, (len(texts), coef rows)."""
        n = len(texts)
        blocks = [self._tfidf(i, texts) for i in range(len(self.parts))]
        # Words then chars, each in document order: per document the products are added
        # in the order of the pipeline's CSR row (scipy's csr_matvecs), so the same sums.
        documents = np.concatenate([b.documents for b in blocks])
        columns = np.concatenate(
            [b.columns + o for b, o in zip(blocks, self._offsets[:-1], strict=True)]
        )
        values = np.concatenate([b.values for b in blocks])
        scores = np.empty((n, self.coef.shape[0]), dtype=np.float64)
        products = np.empty(len(values), dtype=np.float64)
        for row, weights in enumerate(self.coef):
            np.take(weights, columns, out=products)
            products *= values
            scores[:, row] = np.bincount(documents, weights=products, minlength=n)
        scores += self.intercept
        return scores

    def predict_proba(self, texts: Sequence[str]) -> Floats:
        """Probabilities, one row per text, columns in `classes_` order."""
        n, n_classes = len(texts), len(self.classes_)
        if n == 0:
            return np.zeros((0, n_classes), dtype=np.float64)
        scores = self.decision_function(texts)
        with np.errstate(over="ignore"):  # exp overflowing to inf gives 0, as expit does
            return self._probabilities(scores)

    def _probabilities(self, scores: Floats) -> Floats:
        n, n_classes = len(scores), len(self.classes_)
        if self.calibration is not None:
            a, b, columns = self.calibration
            proba = np.zeros((n, n_classes), dtype=np.float64)
            for row, column in enumerate(columns):
                # sklearn's expit(-(a*d + b)) = 1 / (1 + exp(a*d + b))
                proba[:, column] = 1.0 / (1.0 + np.exp(a[row] * scores[:, row] + b[row]))
            if n_classes == 2:
                proba[:, 0] = 1.0 - proba[:, 1]
            else:
                denominator = np.sum(proba, axis=1)[:, np.newaxis]
                uniform = np.full_like(proba, 1 / n_classes)
                proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            return proba
        if n_classes == 2:  # binary logistic regression: expit, then [1 - p, p]
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1 - positive, positive], axis=1)
        scores -= np.max(scores, axis=1).reshape(-1, 1)
        np.exp(scores, out=scores)
        scores /= np.sum(scores, axis=1).reshape(-1, 1)
        return scores

    # -- files ----------------------------------------------------------------------------

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Everything needed to predict, as named arrays (what an .npz file holds)."""
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "parts": [
                {
                    "analyzer": p.analyzer,
                    "ngram_range": list(p.ngram_range),
                    "n_buckets": p.n_buckets,
                }
                for p in self.parts
            ],
        }
        out: dict[str, npt.NDArray[Any]] = {
            "meta": np.array([json.dumps(meta, sort_keys=True)], dtype=np.str_),
            "classes": np.array(self.classes_, dtype=np.str_),
            "coef": self.coef,
            "intercept": self.intercept,
        }
        for i, part in enumerate(self.parts):
            out[f"buckets_{i}"] = part.buckets
            out[f"idf_{i}"] = part.idf
        if self.calibration is not None:
            a, b, columns = self.calibration
            out["calibration_a"], out["calibration_b"], out["calibration_columns"] = a, b, columns
        return out

    def to_bytes(self) -> bytes:
        """The model as .npz bytes: deflated, with fixed member dates (deterministic)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, array in self.arrays().items():
                member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(member, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(
                        handle, np.asarray(array, order="C"), allow_pickle=False
                    )
        return buffer.getvalue()

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> CompactModel:
        """The model from `arrays()`'s output. Raises ValueError when they are not one."""
        try:
            stored = np.asarray(arrays["meta"])
            if stored.dtype.kind != "U" or stored.shape != (1,):
                raise ValueError("meta must be one JSON string")
            meta = json.loads(str(stored[0]))
            if not isinstance(meta, dict):
                raise ValueError("meta must be a JSON object")
            if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
            parts = [
                FeaturePart(
                    analyzer=str(spec["analyzer"]),
                    ngram_range=(int(spec["ngram_range"][0]), int(spec["ngram_range"][1])),
                    n_buckets=int(spec["n_buckets"]),
                    buckets=np.asarray(arrays[f"buckets_{i}"]),
                    idf=np.asarray(arrays[f"idf_{i}"]),
                )
                for i, spec in enumerate(meta["parts"])
            ]
            calibration = None
            if meta["kind"] == "sigmoid":
                columns = np.asarray(arrays["calibration_columns"])
                if columns.dtype != np.int64:
                    raise ValueError("calibration columns must be int64")
                calibration = (
                    _floats(arrays["calibration_a"]),
                    _floats(arrays["calibration_b"]),
                    columns,
                )
            classes = np.asarray(arrays["classes"])
            if classes.dtype.kind != "U" or classes.ndim != 1:
                raise ValueError("classes must be strings")
            return cls(
                classes=[str(c) for c in classes],
                parts=parts,
                kind=str(meta["kind"]),
                coef=_floats(arrays["coef"]),
                intercept=_floats(arrays["intercept"]),
                calibration=calibration,
            )
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a compact model: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactModel:
        """Load .npz bytes (no pickled objects are ever loaded). Raises ValueError."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a readable .npz file: {exc}") from exc
        return cls.from_arrays(arrays)

    @classmethod
    def load(cls, path: Path) -> CompactModel:
        """Load a file written by `save`. Raises OSError or ValueError.

        This does not verify the file: classifiers.files.read_compact checks its sha256
        against the model's metadata first.
        """
        return cls.from_bytes(path.read_bytes())


def _floats(array: npt.NDArray[Any]) -> Floats:
    if array.dtype != np.float64:
        raise ValueError(f"expected float64, got {array.dtype}")
    return np.asarray(array, dtype=np.float64)
