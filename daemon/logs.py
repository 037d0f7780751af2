"""Logging: structlog JSON lines on stderr, one event per line, stable event names.

Events carry ids (mailbox, uid, case reference, outbox id), never message bodies or
complainants' addresses. As a second line of defence, `redact` runs last on every event,
ours and other libraries', traceback included: anything shaped like an email address
becomes "<address>" (an SMTP server's refusal or an exception's message can quote one),
the values a database error quotes are hidden, and the secrets this process has read
(`never_log`) become "<secret>". Tracebacks are rendered without local variables.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


# Libraries that log message content or chatter about every MIME part at WARNING.
_QUIET = ("mailparser", "imapclient", "aiosmtplib", "alembic", "mail-parser-reply")


_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# SQLAlchemy's errors quote the statement's values (addresses, subjects, body text).
_PARAMETERS = re.compile(r"\[parameters: (?:.*?\](?=\n|$)|.*)", re.DOTALL)
_SECRETS: set[str] = set()


def never_log(*values: str | bytes | None) -> None:
    """Keep these values (passwords, the reply secret) out of every log line from now on."""
    for value in values:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if text and len(text.strip()) >= 8:  # a shorter one would blank ordinary words
            _SECRETS.add(text.strip())


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in sorted(_SECRETS, key=len, reverse=True):
            value = value.replace(secret, "<secret>")
        value = _PARAMETERS.sub("[parameters: <hidden>]", value)
        return _ADDRESS.sub("<address>", value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: addresses and known secrets out of every value."""
    for key, value in event.items():
        if isinstance(value, str | dict | list | tuple):
            event[key] = _scrub(value)
    return event


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
        processors=[*shared, structlog.processors.format_exc_info, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Other libraries' log records become JSON lines too, never free text on stderr.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
