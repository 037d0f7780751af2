"""Preparer processes: the pure stages (daemon.triage.prepare) in child processes.

Parsing and classifying a message costs more CPU than recording it. A `ProcessPreparer`
runs them in a separate process (`daemon.prepare_processes`, default 2) so they use
another core while the watcher records the previous batch: the watcher hands batch N+1
over and records batch N meanwhile (daemon/mailbox/watcher.py). The child is the only process
that loads the classifier, so the daemon's own process never imports scikit-learn.

`InlinePreparer` does the same work in the calling thread, with a classifier passed in
(tests, tools, `prepare_processes = 0`).

A message that crashes or kills the child is not lost and does not stop the daemon: the
pool is replaced, the batch is prepared again one message at a time, and a message that
breaks the child again is handed back unparsed, to be quarantined with the reason.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path

import structlog

from classifiers.config import ClassifierConfig
from classifiers.types import Classification, Classifier
from daemon.config import Config, ConfigError
from daemon.mail.parse import ParsedMessage
from daemon.mail.values import RawMessage
from daemon.triage.prepare import Batch, InlinePreparer, Prepared, Preparer, prepare_all

log = structlog.get_logger("candour.preparer")

CRASHED = "preparing this message stopped the worker process"
EXIT_ORPHANED = 75  # a child whose daemon died without shutting it down
# Children run below the daemon's priority. Through a backlog they would take two thirds
# of two cores, and the daemon's sending fell behind its recording (250 acknowledgements
# a second while 700 messages were recorded): the last ones went out 5 s after the last
# message was recorded. The daemon waits for them anyway, so they are never starved.
NICENESS = 10


class PreparerUnavailable(Exception):
    """The child process cannot run at all; mail waits in the mailbox until it can."""


# -- the child process ---------------------------------------------------------------------

# What comes back from the child per message: the raw bytes stay in the parent.
# A Prepared's fields after `raw`, in order (what a child sends back).
Stages = tuple[ParsedMessage | None, str | None, str | None, Classification | None, date | None]

Task = Callable[[Sequence[RawMessage], frozenset[str]], list[Stages]]

_child_classifier: Classifier | None = None


def _exit_with_parent() -> None:
    """Wait until the daemon's process has gone, then end this child at once."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns when the parent's end of the sentinel pipe closes
    os._exit(EXIT_ORPHANED)


def _child_start(state_dir: Path, config: ClassifierConfig, log_level: str) -> None:
    """Runs once in the child: signals, logging, and the classifier (with hot reload)."""
    global _child_classifier
    from classifiers.loader import load_classifier
    from daemon import logs

    # Ctrl-C and SIGTERM are for the daemon, which shuts the child down in order. So that a
    # daemon killed outright (SIGKILL, the OOM killer, a crash) leaves no child behind,
    # holding its memory and waiting for systemd's stop timeout, the child watches it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    logs.configure(log_level)
    _child_classifier = load_classifier(state_dir, config)


def prepare_in_child(raws: Sequence[RawMessage], own_addresses: frozenset[str]) -> list[Stages]:
    assert _child_classifier is not None, "the child's initializer did not run"
    return [
        (p.parsed, p.parse_error, p.automatic, p.classification, p.latest_event)
        for p in prepare_all(_child_classifier, raws, own_addresses)
    ]


class ProcessPreparer:
    """Prepares in a pool of child processes (spawned, not forked: the daemon has threads)."""

    def __init__(
        self,
        state_dir: Path,
        config: ClassifierConfig,
        log_level: str,
        processes: int = 1,
        task: Task | None = None,
    ) -> None:
        self._args = (state_dir, config, log_level)
        self._processes = processes
        # What the child runs per batch: a module-level function (it is pickled by name).
        self._task: Task = task or prepare_in_child
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_start,
            initargs=self._args,
        )
        # A spawn-context pool starts a child only when a task is submitted and no child is
        # idle. One empty task starts the first child now, so that it imports and loads the
        # model while the daemon checks its schema and logs in to IMAP; the others start
        # when a backlog keeps the first busy (~1 core-second each, once), so that an idle
        # daemon holds one child's memory, not two.
        pool.submit(self._task, [], frozenset())
        return pool

    def submit(self, raws: Sequence[RawMessage], own_addresses: frozenset[str]) -> Batch:
        if self._broken():
            self._restart()
        future = self._pool.submit(self._task, list(raws), own_addresses)
        return Batch(list(raws), own_addresses, future)

    def result(self, batch: Batch) -> list[Prepared]:
        try:
            stages: list[Stages] = batch.future.result()
        except BrokenProcessPool:
            log.error("preparer.crashed", count=len(batch.raws))
            return self._one_by_one(batch.raws, batch.own_addresses)
        return [Prepared(raw, *found) for raw, found in zip(batch.raws, stages, strict=True)]

    def _restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def _one_by_one(self, raws: Sequence[RawMessage], own: frozenset[str]) -> list[Prepared]:
        """After a crash: each message alone, so that only the one at fault is lost to it.

        Raises PreparerUnavailable when a fresh child cannot even prepare nothing: then the
        fault is not in the mail, and the batch is left for later, not quarantined.
        """
        self._restart()
        try:
            self._pool.submit(self._task, [], own).result()
        except BrokenProcessPool as exc:
            raise PreparerUnavailable(
                "the process that parses and classifies mail cannot start"
            ) from exc
        out: list[Prepared] = []
        for raw in raws:
            if self._broken():
                self._restart()
            try:
                [found] = self._pool.submit(self._task, [raw], own).result()
            except BrokenProcessPool:
                log.error("preparer.message_crashed", uid=raw.uid)
                out.append(Prepared(raw, None, CRASHED, None))
                continue
            out.append(Prepared(raw, *found))
        return out

    def _broken(self) -> bool:
        # Set by concurrent.futures once a child has died; there is no public accessor.
        return bool(getattr(self._pool, "_broken", False))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_preparer(config: Config, classifier: Classifier | None = None) -> Preparer:
    """Where parsing and classification run: a child process unless configured otherwise
    (the daemon's own process then never loads the model).

    Raises ConfigError for unreadable extra safeguarding rules, here and not in the child.
    """
    if classifier is not None:
        return InlinePreparer(classifier)
    if config.classifier.extra_rules is not None:  # the shipped rules alone are checked in CI
        from classifiers.safety import RulesError, load_rules

        try:
            load_rules(config.classifier.extra_rules)
        except RulesError as exc:
            raise ConfigError(f"classifier.extra_rules: {exc}") from exc
    if config.daemon.prepare_processes == 0:
        from classifiers.loader import load_classifier

        return InlinePreparer(load_classifier(config.daemon.state_dir, config.classifier))
    return ProcessPreparer(
        config.daemon.state_dir,
        config.classifier,
        config.daemon.log_level,
        processes=config.daemon.prepare_processes,
    )
