"""Logging: structlog JSON lines on stderr, one event per line, stable event names.

Events carry ids (mailbox, uid, case reference, outbox id), never message bodies or
complainants' addresses.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


# Libraries that log message content or chatter about every MIME part at WARNING.
_QUIET = ("mailparser", "imapclient", "aiosmtplib", "alembic", "mail-parser-reply")


def configure(level: str = "info", json: bool = True, file: TextIO | None = None) -> None:
    """Set up structlog for the process, and send stdlib logging through it (idempotent).

    Each event is one write of the whole line: the daemon and its preparer children share
    stderr (the journal), and a line written in two parts (print() writes the text, then
    the newline) can be split by another process's line.
    """
    stream = file if file is not None else sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Other libraries' log records become JSON lines too, never free text on stderr.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
