"""`--profile`: one backlog run in-process under pyinstrument, and where its time goes.

The worker is built as the CLI builds it (`Worker.build(load_config(path))`) and
`run_once()` runs inside the profiler. pyinstrument samples one thread only, so
`asyncio.to_thread` is replaced by an inline call for the duration: the IMAP/pipeline
work and the outbox's database writes then run on the profiled thread, in the same
order. Reports: HTML and text trees and the gzipped session in bench/out/, and three
views printed here: the hottest functions by self time, time per pipeline stage, and self
time per package.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import structlog
from pyinstrument import Profiler
from pyinstrument.frame import Frame

from bench.corpus import Corpus
from bench.stack import Stack, seed, write_config
from daemon import logs
from daemon.config import load_config
from daemon.service.worker import Worker

T = TypeVar("T")

# (stage, function name, path fragment): time inside the outermost matching frame.
# Stages indented with "  of which" are only counted inside the last stage above them
# that is not indented (they overlap each other: a flush happens inside open_case).
STAGES: tuple[tuple[str, str, str], ...] = (
    ("IMAP: FETCH BODY.PEEK[]", "fetch", "daemon/mailbox/imap.py"),
    ("IMAP: SEARCH new UIDs", "new_uids", "daemon/mailbox/imap.py"),
    ("IMAP: STORE keywords", "add_keyword", "daemon/mailbox/imap.py"),
    ("IMAP: APPEND copies to Sent", "append_sent_copies", "daemon/mailbox/watcher.py"),
    ("parse (mail-parser)", "parse_message", "daemon/mail/parse.py"),
    ("automatic-mail detection", "automatic_reason", "daemon/mail/automatic.py"),
    ("classification", "classify_batch", "daemon/triage/prepare.py"),
    ("pipeline: database stages (record)", "record", "daemon/triage/pipeline.py"),
    ("  of which: dedupe query", "already_recorded", "models/cases.py"),
    ("  of which: threading (find_case)", "find_case", "daemon/triage/threading.py"),
    ("  of which: open a case (intake)", "open_case", "daemon/triage/opening.py"),
    ("  of which: continue a case", "continue_case", "daemon/casework/correspondence.py"),
    ("  of which: next case reference", "next_reference", "models/cases.py"),
    ("  of which: reply rate-limit query", "replies_sent_since_many", "models/cases.py"),
    ("  of which: lifecycle on_opened", "on_opened", "models/lifecycle.py"),
    ("  of which: working-day deadline", "due", "daemon/casework/workdays.py"),
    ("  of which: compose the reply", "automatic_reply", "replies/compose.py"),
    ("  of which: SQL flush (ORM)", "flush", "sqlalchemy/orm/session.py"),
    ("database: COMMIT", "commit", "sqlalchemy/orm/session.py"),
    ("database: keyword mark", "keywords_set", "models/cases.py"),
    ("logging (structlog)", "_proxy_to_logger", "structlog/"),
    ("SMTP: Mailer.send", "send", "replies/smtp.py"),
    ("outbox: claim", "_claim", "replies/deliver.py"),
    ("outbox: record verdict", "_record", "replies/deliver.py"),
)


@dataclass
class ProfileResult:
    messages: int
    seconds: float
    rate: float
    html: str
    text: str
    hot_spots: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    packages: dict[str, float] = field(default_factory=dict)


async def _inline(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


@contextlib.contextmanager
def _daemon_logs_to(path: Path) -> Iterator[None]:
    """The daemon's JSON log goes to a file during the run, as it would under systemd."""
    with path.open("w") as log, contextlib.redirect_stderr(log):
        logs.configure("info")
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # the in-process SMTP sink
        try:
            yield
        finally:
            structlog.reset_defaults()
            logging.getLogger().handlers.clear()


def _stage_times(root: Frame) -> dict[str, float]:
    """Inclusive seconds per stage; a stage nested in itself (recursion) counts once."""
    out: dict[str, float] = {}
    parent_of = {}
    current = ""
    for stage, _, _ in STAGES:
        if stage.startswith("  of which"):
            parent_of[stage] = current
        else:
            current = stage
    pending: list[tuple[Frame, frozenset[str]]] = [(root, frozenset())]
    while pending:
        frame, inside = pending.pop()
        path = frame.file_path or ""
        here = inside
        for stage, function, fragment in STAGES:
            if frame.function != function or fragment not in path or stage in inside:
                continue
            if stage in parent_of and parent_of[stage] not in inside:
                continue
            out[stage] = out.get(stage, 0.0) + frame.time
            here = here | {stage}
        pending.extend((child, here) for child in frame.children)
    return out


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for own in ("daemon", "models", "replies", "classifiers", "bench", "tests"):
        if f"/{own}/" in path:
            return f"{own} (Candour)" if own != "bench" else own
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 2)[-1]
        return "stdlib " + module.split("/", 1)[0].removesuffix(".py")
    return path or "<native>"


def analyse(
    root: Frame, top: int = 15
) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, float]]:
    """(hot spots by self time, seconds per stage, self seconds per package)."""
    own: dict[tuple[str, str, int], float] = {}
    packages: dict[str, float] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic:
            continue
        spent = frame.total_self_time
        key = (frame.function, frame.file_path or "", frame.line_no or 0)
        own[key] = own.get(key, 0.0) + spent
        name = _package(frame.file_path or "")
        packages[name] = packages.get(name, 0.0) + spent
    total = root.time or 1.0
    hot = [
        {
            "function": function,
            "where": f"{_short(path)}:{line}",
            "self_seconds": round(spent, 3),
            "percent": round(100 * spent / total, 1),
        }
        for (function, path, line), spent in sorted(own.items(), key=lambda kv: -kv[1])[:top]
    ]
    stages = _stage_times(root)
    ordered = {s: round(stages.get(s, 0.0), 2) for s, _, _ in STAGES if s in stages}
    by_package = dict(
        sorted(((k, round(v, 2)) for k, v in packages.items()), key=lambda kv: -kv[1])
    )
    return hot, ordered, by_package


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def profile_backlog(
    out_dir: Path,
    stamp: str,
    size: int = 10_000,
    corpus_seed: int = 20260105,
    *,
    keep_db: bool = False,
) -> ProfileResult:
    """Seed `size` messages, run `Worker.run_once()` under pyinstrument, analyse."""
    work = out_dir / f"work-{stamp}" / "profile"
    work.mkdir(parents=True, exist_ok=True)
    with Stack() as stack, stack.sink() as sink:
        mailbox = stack.new_mailbox()
        seeded = seed(mailbox, (m.raw for m in Corpus(seed=corpus_seed).take(size)))
        print(f"  seeded {seeded.messages} messages ({seeded.rate:.0f}/s)")
        config = write_config(
            work / "candour.toml",
            mailbox=mailbox,
            smtp_port=sink.port,
            db_url=f"sqlite:///{work / 'candour.db'}",
        )
        # 2 ms: ~150,000 samples for a 10,000-message run; 1 ms makes rendering take minutes.
        profiler = Profiler(interval=0.002, async_mode="disabled")
        with _daemon_logs_to(work / "daemon.log"), mock.patch.object(asyncio, "to_thread", _inline):
            worker = Worker.build(load_config(config))  # logs classifier.loaded
            started = time.perf_counter()
            profiler.start()
            try:
                asyncio.run(worker.run_once())
            finally:
                profiler.stop()
            seconds = time.perf_counter() - started
        worker.db.dispose()
        acks = len(sink.messages)
    if not keep_db:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / 'candour.db'}{suffix}").unlink(missing_ok=True)
    html = out_dir / f"profile-{stamp}.html"
    text = out_dir / f"profile-{stamp}.txt"
    html.write_text(profiler.output_html())
    if profiler.last_session is not None:
        # For re-analysis: Session.from_json(json.load(gzip.open(path, "rt"))). Raw, the
        # session of a 10,000-message run is ~270 MB; gzip makes it ~15 MB.
        with gzip.open(out_dir / f"profile-{stamp}.pyisession.gz", "wt") as saved:
            json.dump(profiler.last_session.to_json(), saved)
    text.write_text(profiler.output_text(unicode=True, show_all=False))
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    result = ProfileResult(size, round(seconds, 2), round(size / seconds, 1), str(html), str(text))
    if root is not None:
        result.hot_spots, result.stages, result.packages = analyse(root)
    print(f"  {size} messages, {acks} acknowledgements in {seconds:.1f} s under the profiler")
    return result
