"""What a watcher tells the rest of the daemon: its health, and what it did (an observer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from daemon.mail.values import Result


@dataclass
class Health:
    """What `candour run` and metrics report about one mailbox."""

    connected: bool = False
    last_error: str | None = None
    needs_human: bool = False
    processed: int = 0
    backlog: int = 0  # new messages still waiting, while a pass works through them
    outcomes: dict[str, int] = field(default_factory=dict)


class WatchObserver(Protocol):
    """Hears what a watcher does (daemon.service.metrics counts it). Called on the
    watcher's thread: each call must be quick and must not raise."""

    def connected(self, mailbox: str) -> None: ...
    def recorded(self, mailbox: str, results: Sequence[Result]) -> None: ...
    def synced(self, mailbox: str) -> None: ...


class Unobserved:
    """The observer when nobody listens (metrics off)."""

    def connected(self, mailbox: str) -> None:
        pass

    def recorded(self, mailbox: str, results: Sequence[Result]) -> None:
        pass

    def synced(self, mailbox: str) -> None:
        pass
