"""Prometheus metrics: counted as work happens, read from the database at scrape time.

The only module that imports prometheus_client. Each `Metrics` has its own registry (not
the library's global one), served on the loopback address `[metrics] listen` names.

Counters come from the watchers (a `WatchObserver`) and the outbox (`sent`): quick calls
that only count or remember an id. What needs the database (a new case's label, an
acknowledged message's arrival) and the gauges (outbox depth, overdue cases) are read in
one reader session per scrape, at most every `refresh_seconds`, on the scrape's thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from daemon.config import MetricsConfig, split_listen
from daemon.mail.values import Outcome, Result
from models import status
from models.database import Database
from replies.deliver import Sent, is_gone

# What happened to a message, as the metrics name it (Outcome's values are the log's).
DISPOSITIONS = {
    Outcome.CREATED: "case",
    Outcome.FOLLOWUP: "follow-up",
    Outcome.AUTOMATIC: "automatic",
    Outcome.STAFF: "staff",
    Outcome.DUPLICATE: "duplicate",
    Outcome.QUARANTINED: "quarantined",
}
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "in_doubt")
# Arrival to acknowledgement: seconds on a good day, an hour or more while SMTP is down.
ACK_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)
# Remembered for the next scrape; beyond this (nobody scrapes) the oldest are forgotten.
PENDING_LIMIT = 50_000
T = TypeVar("T")
CHUNK = 500  # ids per IN (...) query
WORKER_SEEN_WITHIN = timedelta(minutes=2)  # as `candour status` counts workers alive


def disposition(outcome: Outcome) -> str:
    """The `disposition` label of candour_messages_total for one message's outcome."""
    return DISPOSITIONS[outcome]


def ack_latency(received_at: datetime, accepted_at: datetime) -> float:
    """Seconds from a message's arrival to SMTP's acceptance of its acknowledgement; never
    negative (INTERNALDATE has whole seconds, so arrival can look later than it was)."""
    return max(0.0, (accepted_at - received_at).total_seconds())


def _chunks(items: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


class Metrics:
    """The registry, the counters the daemon feeds, and the database collector."""

    def __init__(
        self,
        db: Database,
        mailboxes: Sequence[str],
        state_dir: Path,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh_seconds: float = 5.0,
    ) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "candour_messages",
            "Incoming messages handled, by what became of them.",
            ["mailbox", "disposition"],
            registry=self.registry,
        )
        self.reconnects = Counter(
            "candour_imap_reconnects",
            "IMAP connections made again after one was lost.",
            ["mailbox"],
            registry=self.registry,
        )
        self.last_sync = Gauge(
            "candour_mailbox_last_sync_timestamp_seconds",
            "When the mailbox was last checked for new mail (Unix time; 0: not yet).",
            ["mailbox"],
            registry=self.registry,
        )
        for mailbox in mailboxes:
            for name in DISPOSITIONS.values():
                self.messages.labels(mailbox, name)
            self.reconnects.labels(mailbox)
            self.last_sync.labels(mailbox)  # 0 until then: a mailbox never checked alerts too
        self.server: WSGIServer | None = None
        self._connected: set[str] = set()
        self._collector = _DatabaseCollector(db, mailboxes, state_dir, now, refresh_seconds)
        self.registry.register(self._collector)

    # -- what the watchers and the outbox report (quick: no I/O) ---------------------------

    def connected(self, mailbox: str) -> None:
        if mailbox in self._connected:
            self.reconnects.labels(mailbox).inc()
        self._connected.add(mailbox)

    def recorded(self, mailbox: str, results: Sequence[Result]) -> None:
        for name, count in Tally(disposition(r.outcome) for r in results).items():
            self.messages.labels(mailbox, name).inc(count)
        opened = [r.reference for r in results if r.outcome == Outcome.CREATED and r.reference]
        self._collector.opened.extend(opened)

    def synced(self, mailbox: str) -> None:
        self.last_sync.labels(mailbox).set(time.time())

    def sent(self, mail: Sent) -> None:
        self._collector.sent.append((mail.outbox_id, mail.accepted_at))

    # -- serving ---------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> None:
        """Listen on host:port (a thread per scrape). Raises OSError (e.g. port in use)."""
        self.server, _ = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve_metrics(
    config: MetricsConfig, db: Database, mailboxes: Sequence[str], state_dir: Path
) -> Metrics:
    """Metrics served where `config` says. Raises OSError when the address cannot be used."""
    metrics = Metrics(db, mailboxes, state_dir)
    metrics.serve(*split_listen(config.listen))
    return metrics


class _DatabaseCollector(Collector):
    """The metrics that need the database, read at most every `refresh_seconds`."""

    def __init__(
        self,
        db: Database,
        mailboxes: Sequence[str],
        state_dir: Path,
        now: Callable[[], datetime],
        refresh_seconds: float,
    ) -> None:
        # The model's version is read from its files: numpy and the classifier's modules
        # are loaded only when metrics are served (the daemon's process does not need them).
        from classifiers.store import ModelStore

        self.db, self.mailboxes, self.now = db, tuple(mailboxes), now
        self.models = ModelStore(state_dir)
        self.refresh_seconds = refresh_seconds
        self.opened: deque[str] = deque(maxlen=PENDING_LIMIT)  # references of new cases
        self.sent: deque[tuple[int, datetime]] = deque(maxlen=PENDING_LIMIT)
        self.cases = Counter(
            "candour_cases",
            "Cases opened, by the label they were opened with.",
            ["mailbox", "label"],
            registry=None,
        )
        self.ack_seconds = Histogram(
            "candour_ack_seconds",
            "Seconds from a message's arrival to SMTP's acceptance of its acknowledgement.",
            ["mailbox"],
            buckets=ACK_BUCKETS,
            registry=None,
        )
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._gauges: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # one scrape reads the database; one arriving meanwhile waits
            if time.monotonic() - self._read_at >= self.refresh_seconds:
                with self.db.reader() as session:
                    self._resolve(session)
                    self._gauges = self._read(session)
                self._read_at = time.monotonic()
            gauges = list(self._gauges)
        yield from self.cases.collect()
        yield from self.ack_seconds.collect()
        yield from gauges
        info = InfoMetricFamily("candour_model", "The classifier model version in use.")
        info.add_metric([], {"version": self.models.current() or "shipped"})
        yield info

    def _resolve(self, session: Session) -> None:
        """Count the cases opened and time the acknowledgements sent since the last scrape."""
        opened = [self.opened.popleft() for _ in range(len(self.opened))]
        for refs in _chunks(opened):
            for mailbox, label in status.case_labels(session, refs):
                self.cases.labels(mailbox, label).inc()
        sent = dict(self.sent.popleft() for _ in range(len(self.sent)))
        for ids in _chunks(list(sent)):
            for row_id, mailbox, received_at in status.acknowledged_arrivals(session, ids):
                self.ack_seconds.labels(mailbox).observe(ack_latency(received_at, sent[row_id]))

    def _read(self, session: Session) -> list[Metric]:
        now = self.now()
        outbox = status.outbox_status(session)
        messages = GaugeMetricFamily(
            "candour_outbox_messages", "Outgoing mail by status.", labels=["status"]
        )
        for name in sorted({*OUTBOX_STATUSES, *outbox.by_status}):
            messages.add_metric([name], outbox.by_status.get(name, 0))
        oldest = outbox.oldest_pending
        age = GaugeMetricFamily(
            "candour_outbox_oldest_pending_seconds",
            "How long the oldest mail waiting to be sent has waited (0: none waiting).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        overdue = GaugeMetricFamily(
            "candour_overdue_cases",
            "Open cases past a deadline: acknowledgement, or the stage's response.",
            labels=["mailbox", "kind"],
        )
        open_ = GaugeMetricFamily("candour_open_cases", "Open cases.", labels=["mailbox"])
        quarantined = GaugeMetricFamily(
            "candour_quarantined_messages",
            "Messages kept for a person to look at.",
            labels=["mailbox"],
        )
        for name in self.mailboxes:
            box = status.mailbox_status(session, name, now)
            overdue.add_metric([name, "acknowledgement"], box.overdue_acknowledgements)
            overdue.add_metric([name, "stage"], box.overdue_stages)
            open_.add_metric([name], box.open_cases)
            quarantined.add_metric([name], box.quarantined)
        recent = status.recent_workers(session, now, WORKER_SEEN_WITHIN)
        alive = sum(not is_gone(w, seen, now, me="") for w, seen in recent.items())
        workers = GaugeMetricFamily(
            "candour_workers", "Workers whose outbox heartbeat is recent.", value=alive
        )
        return [messages, age, overdue, open_, quarantined, workers]
