"""The trained model's scikit-learn pipeline designs (for training).

`ModelClassifier`, the Classifier built from a fitted model, lives in classifiers.predict
(no scikit-learn there) and is re-exported here for existing callers.

Features are word 1-2-gram TF-IDF plus character 3-5-gram TF-IDF (sublinear tf, so a
repeated word counts less than a new one; character n-grams so spelling slips, plurals and
unseen words still share evidence), from the hashed counts in classifiers.features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from classifiers.features import CharNgramHasher, WordNgramHasher
from classifiers.predict import ModelClassifier

__all__ = ["DEFAULT_DESIGN", "DESIGNS", "ModelClassifier"]


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
