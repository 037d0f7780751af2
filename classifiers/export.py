"""From a fitted scikit-learn pipeline to its compact form (classifiers.compact).

The conversion reads the pipeline's fitted attributes (nothing from scikit-learn is
imported here); classifiers.store uses it, and checks the result against the pipeline on
PROBE_TEXTS, whenever it writes a model (classifiers.upgrade adds it to an older one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from classifiers import hashing
from classifiers.compact import CompactModel, FeaturePart, Floats

# Texts every freshly written compact model is checked on against its pipeline: varied
# vocabulary, an empty text, odd characters.
PROBE_TEXTS: tuple[str, ...] = (
    "I waited three hours at the clinic and nobody told me why. I want a formal response.",
    "Thank you to the nurses on ward 7, they were wonderful with my dad.",
    "Please send me a copy of all the personal data you hold about me (subject access).",
    "My manager shouts at me in front of colleagues and I want to raise a grievance.",
    "I am worried about the child next door, he is left alone at night and has bruises.",
    "My mother needs a care assessment, her carers have not visited for a week.",
    "The bins were missed again this week, third time, and nobody answers the phone.",
    "",
    "x",
    "東京 مرحبا \x00 café naïve — “quotes” 12345 ref ABC-123/45",
)


def from_pipeline(pipeline: Any) -> CompactModel:
    """The compact form of a fitted pipeline of one of classifiers.model's DESIGNS
    (read through its fitted attributes; nothing is imported).

    Raises ValueError for any other structure or setting.
    """
    try:
        (_, features), (_, model) = pipeline.steps
        if getattr(features, "transformer_weights", None) is not None:
            raise ValueError("weighted feature unions are not supported")
        parts = [_feature_part(name, sub) for name, sub in features.transformer_list]
        classes = [str(c) for c in model.classes_]
        if hasattr(model, "calibrated_classifiers_"):
            return _calibrated(classes, parts, model)
        if type(model).__name__ == "LogisticRegression":
            return _logistic(classes, parts, model)
    except (AttributeError, TypeError) as exc:
        raise ValueError(f"not a fitted Candour pipeline: {exc}") from exc
    raise ValueError(f"unsupported final step {type(model).__name__}")


def differences(model: CompactModel, pipeline: Any, texts: Sequence[str]) -> tuple[float, int]:
    """(largest absolute probability difference, number of texts whose label differs)
    between `model` and `pipeline` on `texts`."""
    expected = np.asarray(pipeline.predict_proba(list(texts)), dtype=np.float64)
    got = model.predict_proba(texts)
    if expected.shape != got.shape:
        return float("inf"), len(texts)
    largest = float(np.max(np.abs(expected - got))) if len(texts) else 0.0
    return largest, int(np.sum(expected.argmax(axis=1) != got.argmax(axis=1)))


def _feature_part(name: str, sub: Any) -> FeaturePart:
    (_, hasher), (_, tfidf) = sub.steps
    if not (tfidf.sublinear_tf is True and tfidf.norm == "l2" and tfidf.use_idf is True):
        raise ValueError(f"{name}: only sublinear, l2-normalised tf-idf is supported")
    analyzer = getattr(hasher, "analyzer", None)
    if analyzer not in hashing.ANALYZERS:
        raise ValueError(f"{name}: unknown n-gram hasher {type(hasher).__name__}")
    low, high = hasher.ngram_range
    return FeaturePart(
        analyzer=str(analyzer),
        ngram_range=(int(low), int(high)),
        n_buckets=int(hasher.n_buckets),
        buckets=np.asarray(hasher.buckets_, dtype=np.uint64),
        idf=np.asarray(tfidf.idf_, dtype=np.float64),
    )


def _coef(estimator: Any) -> tuple[Floats, Floats]:
    coef, intercept = estimator.coef_, estimator.intercept_
    if not isinstance(coef, np.ndarray) or coef.ndim != 2:
        raise ValueError("coef_ must be a dense 2-D array")
    return (
        np.asarray(coef, dtype=np.float64),
        np.asarray(intercept, dtype=np.float64).reshape(coef.shape[0]),
    )


def _calibrated(classes: list[str], parts: list[FeaturePart], model: Any) -> CompactModel:
    """CalibratedClassifierCV(method="sigmoid", ensemble=False) around a linear model."""
    if len(model.calibrated_classifiers_) != 1:
        raise ValueError("only ensemble=False calibration (one calibrated model) is supported")
    calibrated = model.calibrated_classifiers_[0]
    if calibrated.method != "sigmoid":
        raise ValueError(f"only sigmoid calibration is supported, not {calibrated.method}")
    estimator = calibrated.estimator
    if not hasattr(estimator, "decision_function"):
        raise ValueError("the calibrated estimator has no decision_function")
    coef, intercept = _coef(estimator)
    if [str(c) for c in calibrated.classes] != classes:
        raise ValueError("calibrated classes differ from the model's")
    # _CalibratedClassifier.predict_proba: calibrator i fills the column of the estimator's
    # class i among the model's classes (sorted, as LabelEncoder does); binary: column 1.
    columns = [classes.index(str(c)) for c in estimator.classes_][: coef.shape[0]]
    if len(classes) == 2:
        columns = [c + 1 for c in columns]
    calibrators = calibrated.calibrators
    if len(calibrators) != coef.shape[0]:
        raise ValueError(f"{len(calibrators)} calibrators for {coef.shape[0]} decision rows")
    a = np.array([float(c.a_) for c in calibrators], dtype=np.float64)
    b = np.array([float(c.b_) for c in calibrators], dtype=np.float64)
    return CompactModel(
        classes, parts, "sigmoid", coef, intercept, (a, b, np.array(columns, dtype=np.int64))
    )


def _logistic(classes: list[str], parts: list[FeaturePart], model: Any) -> CompactModel:
    """LogisticRegression: softmax of the decision function (binary: expit)."""
    if getattr(model, "multi_class", "auto") not in ("auto", "multinomial", "deprecated"):
        raise ValueError("one-vs-rest logistic regression is not supported")
    if len(classes) > 2 and getattr(model, "solver", "lbfgs") == "liblinear":
        raise ValueError("liblinear (one-vs-rest) logistic regression is not supported")
    coef, intercept = _coef(model)
    return CompactModel(classes, parts, "softmax", coef, intercept)
