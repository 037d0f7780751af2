"""Which classifier the daemon uses: the current trained model, else the keyword baseline."""

from __future__ import annotations

from pathlib import Path

from classifiers.baseline import KeywordBaseline
from classifiers.types import Classifier
from daemon.config import ClassifierConfig


def load_classifier(state_dir: Path, config: ClassifierConfig) -> Classifier:
    """The classifier for a daemon whose state lives in `state_dir`."""
    return KeywordBaseline(review_below=config.review_below)
