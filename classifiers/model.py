"""The trained model: its scikit-learn pipeline designs and the Classifier built from one.

Features are word 1-2-gram TF-IDF plus character 3-5-gram TF-IDF (sublinear tf, so a
repeated word counts less than a new one; character n-grams so spelling slips, plurals and
unseen words still share evidence), from the hashed counts in classifiers.features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from classifiers.features import CharNgramHasher, WordNgramHasher
from classifiers.safety import SafetyNet
from classifiers.text import model_text, scan_text
from classifiers.types import Classification, ClassifierInput


def _features() -> FeatureUnion:
    words = Pipeline([("hash", WordNgramHasher()), ("tfidf", TfidfTransformer(sublinear_tf=True))])
    chars = Pipeline([("hash", CharNgramHasher()), ("tfidf", TfidfTransformer(sublinear_tf=True))])
    return FeatureUnion([("words", words), ("chars", chars)])


def _calibrated_svm() -> CalibratedClassifierCV:
    # Sigmoid calibration fitted on 5-fold out-of-fold scores; one final SVM (ensemble=False)
    # keeps the file small and prediction fast.
    svm = LinearSVC(C=0.5, class_weight="balanced", random_state=0)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=5, ensemble=False)


def _logistic() -> LogisticRegression:
    return LogisticRegression(C=20.0, class_weight="balanced", max_iter=3000)


# Design name -> (description, features factory, classifier factory).
DESIGNS: dict[str, tuple[str, Callable[[], FeatureUnion], Callable[[], Any]]] = {
    "svm-sigmoid": (
        "word 1-2 + char 3-5 TF-IDF, LinearSVC (C=0.5, balanced), sigmoid-calibrated (5-fold)",
        _features,
        _calibrated_svm,
    ),
    "logistic": (
        "word 1-2 + char 3-5 TF-IDF, multinomial logistic regression (C=20, balanced)",
        _features,
        _logistic,
    ),
}
DEFAULT_DESIGN = "svm-sigmoid"


class ModelClassifier:
    """A fitted pipeline and the safety net: implements classifiers.types.Classifier."""

    def __init__(
        self, pipeline: Pipeline, version: str, safety: SafetyNet, review_below: float
    ) -> None:
        self.pipeline = pipeline
        self._version = version
        self.safety = safety
        self.review_below = review_below
        self.labels: tuple[str, ...] = tuple(str(c) for c in pipeline.classes_)
        self._safeguarding = (
            self.labels.index("safeguarding") if "safeguarding" in self.labels else None
        )

    @property
    def version(self) -> str:
        return self._version

    def probabilities(self, items: Sequence[ClassifierInput]) -> npt.NDArray[np.float64]:
        """Return calibrated probabilities, one row per item, columns in `self.labels` order."""
        texts = [model_text(item.subject, item.body) for item in items]
        return np.asarray(self.pipeline.predict_proba(texts), dtype=np.float64)

    def classify(self, items: Sequence[ClassifierInput]) -> list[Classification]:
        """Label every item; flags and reasons say when the safety net fired."""
        if not items:
            return []
        probabilities = self.probabilities(items)
        out = []
        for item, row in zip(items, probabilities, strict=True):
            best = int(row.argmax())
            confidence = float(row[best])
            risk = float(row[self._safeguarding]) if self._safeguarding is not None else 0.0
            reasons = self.safety.reasons(scan_text(item.subject, item.body), risk)
            out.append(
                Classification(
                    label=self.labels[best],
                    confidence=confidence,
                    needs_review=confidence < self.review_below,
                    model_version=self._version,
                    flags=("safeguarding",) if reasons else (),
                    reasons=reasons,
                )
            )
        return out
