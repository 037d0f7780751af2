"""The one owner of SMTP: a small pool of aiosmtplib connections and delivery outcomes.

Each delivery runs MAIL, RCPT and DATA as separate steps so that a failure can be
classified exactly: refused (the server said no: nothing was delivered), transient
(could not talk to the server before DATA: nothing was delivered), or in doubt (the
connection broke during DATA: the server may have the message). See models/outbox.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["sent", "transient", "refused", "in_doubt"]


class SmtpConfig(BaseModel):
    """Where and how mail is handed over: the `[smtp]` table, less its credentials (the
    daemon's configuration adds `password_file`/`password_env`; Mailer takes the password)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    timeout: float = Field(default=30.0, gt=0)
    # 16: the outbox commits the verdicts of all its connections together (replies.deliver),
    # and with 8 it fell behind a PostgreSQL backlog (figures: bench/README.md, eleventh
    # round). A crash can leave one message per connection in doubt.
    connections: int = Field(default=16, ge=1, le=32)
    username: str | None = None


@dataclass(frozen=True)
class SendResult:
    verdict: Verdict
    detail: str = ""


class _Connection:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.last_used = time.monotonic()


class Mailer:
    """Sends raw messages over up to `config.connections` reused SMTP connections."""

    IDLE_CHECK_SECONDS = 20.0

    def __init__(self, config: SmtpConfig, password: str | None) -> None:
        self._config = config
        self._password = password
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        self._slots = asyncio.Semaphore(config.connections)

    async def _open(self) -> _Connection:
        cfg = self._config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            timeout=cfg.timeout,
        )
        await client.connect()
        if cfg.username:
            await client.login(cfg.username, self._password or "")
        return _Connection(client)

    async def _take(self) -> _Connection:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if not conn.client.is_connected:
                continue
            if time.monotonic() - conn.last_used > self.IDLE_CHECK_SECONDS:
                try:
                    await conn.client.noop()
                except (aiosmtplib.SMTPException, OSError):
                    await self._discard(conn)
                    continue
            return conn
        return await self._open()

    async def _discard(self, conn: _Connection) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection
            conn.client.close()

    async def send(self, envelope_from: str, recipient: str, raw: bytes) -> SendResult:
        """Deliver one message; never raises for SMTP or network trouble."""
        async with self._slots:
            try:
                conn = await self._take()
            except aiosmtplib.SMTPResponseException as exc:
                return SendResult("refused" if exc.code >= 500 else "transient", _describe(exc))
            except (aiosmtplib.SMTPException, OSError) as exc:
                return SendResult("transient", _describe(exc))
            client = conn.client
            stage = "envelope"
            try:
                await client.mail(envelope_from)
                await client.rcpt(recipient)
                stage = "data"
                reply = await client.data(raw)
            except aiosmtplib.SMTPResponseException as exc:
                # The server answered with an error code: it did not take the message.
                await self._reset(conn)
                return SendResult("refused" if exc.code >= 500 else "transient", _describe(exc))
            except (aiosmtplib.SMTPException, OSError) as exc:
                await self._discard(conn)
                if stage == "data":
                    return SendResult("in_doubt", _describe(exc))
                return SendResult("transient", _describe(exc))
            except (ValueError, UnicodeError) as exc:
                # aiosmtplib refuses the address or bytes before talking to the server.
                await self._reset(conn)
                return SendResult("refused", _describe(exc))
            conn.last_used = time.monotonic()
            self._idle.put_nowait(conn)
            # The server's answer names its queue id: the proof of delivery there is.
            return SendResult("sent", f"{reply.code} {reply.message}"[:200])

    async def _reset(self, conn: _Connection) -> None:
        try:
            await conn.client.rset()
            conn.last_used = time.monotonic()
            self._idle.put_nowait(conn)
        except (aiosmtplib.SMTPException, OSError):
            await self._discard(conn)

    async def check(self) -> None:
        """Connect and log in as delivery would, then quit. Raises SmtpUnavailable naming
        the server and what went wrong."""
        where = f"SMTP {self._config.host}:{self._config.port}"
        try:
            conn = await self._open()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SmtpUnavailable(f"{where}: login refused: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpUnavailable(f"{where}: {_describe(exc)}") from exc
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await conn.client.quit()

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            try:
                await conn.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                await self._discard(conn)


class SmtpUnavailable(Exception):
    """The SMTP server cannot be reached or refuses the login (Mailer.check)."""


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__} {code or ''} {message}".strip()[:500]
