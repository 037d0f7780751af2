"""Which classifier the daemon uses: the current trained model, else the shipped model, else
the keyword baseline; a newly promoted model is picked up without a restart.

Models are loaded in their compact form (model.npz, numpy only) when they have one, so this
module and the daemon's classifier process import neither scikit-learn, scipy nor skops;
a model saved before the compact form existed is loaded from model.skops (and imports them).

Log events (no message text, no addresses): classifier.loaded, classifier.current_unusable,
classifier.shipped_unusable, classifier.load_failed, classifier.reloaded,
classifier.reload_failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from classifiers.baseline import KeywordBaseline
from classifiers.config import ClassifierConfig
from classifiers.files import ModelError, read_predictor
from classifiers.predict import ModelClassifier
from classifiers.safety import SafetyNet, load_rules
from classifiers.store import ModelStore, shipped_dir
from classifiers.text import scan_text
from classifiers.types import Classification, Classifier, ClassifierInput

log = structlog.get_logger("candour.classifier")

# How often classify() looks at the CURRENT pointer: cheap (one stat), but not per batch.
CHECK_EVERY_SECONDS = 5.0


class FlaggedBaseline:
    """The keyword baseline with the safety net's rules on top: the net never goes away."""

    def __init__(self, safety: SafetyNet, review_below: float) -> None:
        self.baseline = KeywordBaseline(review_below=review_below)
        self.safety = safety

    @property
    def version(self) -> str:
        return self.baseline.version

    def classify(self, items: Sequence[ClassifierInput]) -> list[Classification]:
        """Label with keywords, then flag whatever the safeguarding rules match."""
        out = []
        for item, result in zip(items, self.baseline.classify(items), strict=True):
            reasons = self.safety.rule_hits(scan_text(item.subject, item.body))
            if result.label == "safeguarding":
                reasons = (*reasons, *result.reasons)
            if reasons:
                result = replace(result, flags=("safeguarding",), reasons=reasons)
            out.append(result)
        return out


def _usable_model(
    store: ModelStore, safety: SafetyNet, review_below: float
) -> ModelClassifier | None:
    """The current version if it loads, else the shipped model if it loads, else None."""
    version = store.current()
    if version is not None:
        try:
            loaded = store.load_predictor(version)
            return ModelClassifier(loaded.predictor, loaded.info.version, safety, review_below)
        except ModelError as exc:
            log.error("classifier.current_unusable", version=version, error=str(exc))
    try:
        loaded = read_predictor(shipped_dir())
        return ModelClassifier(loaded.predictor, loaded.info.version, safety, review_below)
    except ModelError as exc:
        log.error("classifier.shipped_unusable", error=str(exc))
    return None


class ReloadingClassifier:
    """A Classifier that follows `<state_dir>/models/CURRENT`.

    classify() checks the pointer at most every CHECK_EVERY_SECONDS; when it changed, the
    named version (or the shipped model, if the pointer was removed) is loaded and used
    from then on. A version that fails to load is logged and the old model kept.
    """

    def __init__(
        self,
        store: ModelStore,
        safety: SafetyNet,
        review_below: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.safety = safety
        self.review_below = review_below
        self.clock = clock
        self._lock = threading.Lock()
        self._pointer = store.pointer_state()
        self._checked_at = clock()
        model = _usable_model(store, safety, review_below)
        if model is None:
            log.error("classifier.load_failed", fallback=KeywordBaseline.version)
            self._active: Classifier = FlaggedBaseline(safety, review_below)
        else:
            self._active = model
        log.info("classifier.loaded", version=self._active.version)

    @property
    def version(self) -> str:
        return self._active.version

    @property
    def active(self) -> Classifier:
        """The classifier in use now: a ModelClassifier, or the FlaggedBaseline."""
        return self._active

    def _reload_if_promoted(self) -> None:
        now = self.clock()
        if now - self._checked_at < CHECK_EVERY_SECONDS:
            return
        self._checked_at = now
        pointer = self.store.pointer_state()
        if pointer == self._pointer:
            return
        self._pointer = pointer  # a version that fails is not retried until the next change
        version = self.store.current()
        try:
            loaded = (
                self.store.load_predictor(version) if version else read_predictor(shipped_dir())
            )
        except ModelError as exc:
            log.error(
                "classifier.reload_failed",
                version=version or "shipped",
                kept=self._active.version,
                error=str(exc),
            )
            return
        previous = self._active.version
        self._active = ModelClassifier(
            loaded.predictor, loaded.info.version, self.safety, self.review_below
        )
        log.info("classifier.reloaded", version=loaded.info.version, previous=previous)

    def classify(self, items: Sequence[ClassifierInput]) -> list[Classification]:
        """Label a batch with the current model (reloading it first if it was promoted)."""
        with self._lock:
            self._reload_if_promoted()
            active = self._active
        return active.classify(items)


def load_classifier(state_dir: Path, config: ClassifierConfig) -> Classifier:
    """The classifier for a daemon whose state lives in `state_dir`.

    Raises RulesError when config.extra_rules cannot be read or is invalid: an admin who
    added safeguarding rules must not find them silently ignored.
    """
    safety = SafetyNet(load_rules(config.extra_rules))
    return ReloadingClassifier(ModelStore(state_dir), safety, config.review_below)
