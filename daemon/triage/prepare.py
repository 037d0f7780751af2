"""The pure stages of the pipeline: parse, recognise machine-written mail, classify.

They need no database and no network, so they run wherever is cheapest: in a preparer
child process (daemon.mailbox.preparer), or inline (`InlinePreparer`: tests, tools,
`prepare_processes = 0`). `MESSAGE_STAGES` runs per message, in order; classification runs
on the whole batch at once (the model is fastest on many texts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Protocol

import structlog

from classifiers.types import Classification, Classifier, ClassifierInput
from daemon.casework.time_limits import latest_event
from daemon.mail.automatic import automatic_reason
from daemon.mail.parse import ParsedMessage, ParseError, parse_message
from daemon.mail.values import RawMessage

log = structlog.get_logger("candour.preparer")

# What the classifier says of a message it never saw (it failed): a complaint, for review.
UNCLASSIFIED = Classification("complaint", 0.0, True, "none")


@dataclass(frozen=True)
class Prepared:
    """A message after the pure stages."""

    raw: RawMessage
    parsed: ParsedMessage | None
    parse_error: str | None
    automatic: str | None
    classification: Classification | None = None
    latest_event: date | None = None  # the latest event a person's message dates

    @property
    def dedupe_key(self) -> str:
        if self.parsed is not None and self.parsed.message_id:
            return f"mid:{self.parsed.message_id}"[:400]
        return f"sha256:{self.raw.sha256}"


MessageStage = Callable[[Prepared, frozenset[str]], Prepared]


def parse_stage(item: Prepared, own_addresses: frozenset[str]) -> Prepared:
    """Stage 1: the raw bytes as a ParsedMessage, or the reason they cannot be parsed."""
    try:
        return replace(item, parsed=parse_message(item.raw.raw))
    except ParseError as exc:
        return replace(item, parse_error=str(exc))


def automatic_stage(item: Prepared, own_addresses: frozenset[str]) -> Prepared:
    """Stage 2: why a machine wrote it (bounce, auto-reply, list), or None for a person."""
    if item.parsed is None:
        return item
    return replace(item, automatic=automatic_reason(item.parsed, own_addresses))


def events_stage(item: Prepared, own_addresses: frozenset[str]) -> Prepared:
    """The latest event a person's message dates (for the complaints time limit): read
    here, in the preparer, because dateparser is slow and the database waits for nobody."""
    if item.parsed is None or item.automatic is not None:
        return item
    return replace(item, latest_event=latest_event(item.parsed.text, item.raw.received_at))


# The per-message stages, in order (classification runs on the batch: classify_batch).
MESSAGE_STAGES: tuple[MessageStage, ...] = (parse_stage, automatic_stage, events_stage)


def prepare(raw: RawMessage, own_addresses: frozenset[str]) -> Prepared:
    """Run MESSAGE_STAGES on one message. Pure."""
    item = Prepared(raw, None, None, None)
    for stage in MESSAGE_STAGES:
        item = stage(item, own_addresses)
    return item


def classify_batch(classifier: Classifier, items: Sequence[Prepared]) -> list[Prepared]:
    """Stage 3: label every message a person wrote; a classifier failure sends it to review
    (as a complaint, so that it is acknowledged and its stage clock runs)."""
    wanted = [i for i, p in enumerate(items) if p.parsed is not None and p.automatic is None]
    inputs = [
        ClassifierInput(items[i].parsed.subject, items[i].parsed.text, items[i].parsed.sender)  # type: ignore[union-attr]
        for i in wanted
    ]
    try:
        labels = classifier.classify(inputs) if inputs else []
    except Exception as exc:  # noqa: BLE001 - never lose mail because a model failed
        log.error("classifier.failed", error=type(exc).__name__, count=len(inputs))
        labels = [
            Classification(
                "complaint", 0.0, True, classifier.version, reasons=("classifier-error",)
            )
            for _ in inputs
        ]
    out = list(items)
    for index, label in zip(wanted, labels, strict=True):
        out[index] = replace(items[index], classification=label)
    return out


@dataclass(frozen=True)
class Batch:
    """A batch handed to a preparer, and where its result will be."""

    raws: list[RawMessage]
    own_addresses: frozenset[str]
    # Its result is the preparer's own form (Prepared, or Stages from a child): only the
    # preparer that made the batch reads it, in result().
    future: Future[Any]


class Preparer(Protocol):
    def submit(self, raws: Sequence[RawMessage], own_addresses: frozenset[str]) -> Batch:
        """Start preparing a batch (returns at once when the work runs in a child)."""
        ...

    def result(self, batch: Batch) -> list[Prepared]:
        """One Prepared per message, in order. Never raises for a message's sake."""
        ...

    def close(self) -> None: ...


def prepare_all(
    classifier: Classifier, raws: Sequence[RawMessage], own_addresses: frozenset[str]
) -> list[Prepared]:
    return classify_batch(classifier, [prepare(r, own_addresses) for r in raws])


class InlinePreparer:
    """Prepares in the calling thread with the given classifier."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier

    def submit(self, raws: Sequence[RawMessage], own_addresses: frozenset[str]) -> Batch:
        future: Future[list[Prepared]] = Future()
        future.set_result(prepare_all(self.classifier, raws, own_addresses))
        return Batch(list(raws), own_addresses, future)

    def result(self, batch: Batch) -> list[Prepared]:
        prepared: list[Prepared] = batch.future.result()
        return prepared

    def close(self) -> None:
        return None
