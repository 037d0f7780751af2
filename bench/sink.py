"""A lean SMTP receiver for the benchmark, so that the observer costs little CPU.

The daemon is measured on the same two cores as everything the measurement needs. The
tests' sink (aiosmtpd, tests/mailstack.SmtpSink) costs ~0.9 ms of CPU per message it
receives: it reads DATA a line at a time and parses every envelope address with the
standard library's RFC 5322 parser. In a 10,000-message backlog run that was 11 % of the
machine, taken from the daemon, while the raw-limit measurement it is compared with pays
nothing of the kind. This receiver speaks the SMTP the daemon uses (EHLO/HELO, MAIL, RCPT,
DATA with dot-unstuffing, RSET, NOOP, QUIT) with one buffer per connection, and keeps what
it is given as tests.mailstack.Received, so the benchmark reads it like the tests' sink.

It is not a mail server: no size limits, no extensions beyond 8BITMIME and SMTPUTF8, no
address validation. `python -m bench.run --sink aiosmtpd` measures with the tests' sink.
"""

from __future__ import annotations

import asyncio
import threading
import time

from tests.mailstack import Received, free_port

_END = b"\r\n.\r\n"


class _Session(asyncio.Protocol):
    """One SMTP connection: commands line by line, then DATA up to the lone dot."""

    def __init__(self, sink: LeanSink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.mail_from: str | None = None
        self.rcpt_tos: list[str] = []
        self.in_data = False
        self.searched = 0  # bytes of DATA already searched for the end marker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            if self.in_data:
                if not self._message():
                    return
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            self._command(line.decode("utf-8", "replace"))

    def _message(self) -> bool:
        """Take one whole message out of the buffer, if it has arrived."""
        if self.buffer.startswith(b".\r\n"):  # an empty message
            body, used = b"", 3
        else:
            end = self.buffer.find(_END, max(0, self.searched - len(_END)))
            if end < 0:
                self.searched = len(self.buffer)
                return False
            body, used = bytes(self.buffer[: end + 2]), end + len(_END)
        del self.buffer[:used]
        self.in_data, self.searched = False, 0
        body = body.replace(b"\r\n..", b"\r\n.")
        if body.startswith(b".."):
            body = body[1:]
        self.sink.keep(Received(self.mail_from or "", list(self.rcpt_tos), body, time.time()))
        self.mail_from, self.rcpt_tos = None, []
        self._reply("250 OK")
        return True

    def _command(self, line: str) -> None:
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self._reply("250-bench-sink\r\n250-8BITMIME\r\n250 SMTPUTF8")
        elif verb == "HELO":
            self._reply("250 bench-sink")
        elif verb == "MAIL":
            self.mail_from, self.rcpt_tos = _address(argument) or "<>", []  # as aiosmtpd
            self._reply("250 OK")
        elif verb == "RCPT":
            if self.mail_from is None:
                self._reply("503 need MAIL first")
            else:
                self.rcpt_tos.append(_address(argument))
                self._reply("250 OK")
        elif verb == "DATA":
            if not self.rcpt_tos:
                self._reply("503 need RCPT first")
            else:
                self.in_data = True
                self._reply("354 end with <CRLF>.<CRLF>")
        elif verb == "RSET":
            self.mail_from, self.rcpt_tos = None, []
            self._reply("250 OK")
        elif verb == "NOOP":
            self._reply("250 OK")
        elif verb == "QUIT":
            self._reply("221 bye")
            if self.transport is not None:
                self.transport.close()
        else:
            self._reply("502 not implemented")

    def _reply(self, text: str) -> None:
        if self.transport is not None:
            self.transport.write(text.encode() + b"\r\n")


def _address(argument: str) -> str:
    """The address in "FROM:<a@b> SIZE=..." or "TO:<a@b>" (empty for the null sender)."""
    _, _, rest = argument.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        return rest[1 : rest.find(">")] if ">" in rest else rest[1:]
    return rest.split(" ", 1)[0]


class LeanSink:
    """Receives on 127.0.0.1 in a thread of its own; the same reading API as SmtpSink."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-sink")
        self._server: asyncio.Server | None = None

    def start(self) -> LeanSink:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    async def _serve(self) -> asyncio.Server:
        return await self._loop.create_server(lambda: _Session(self), "127.0.0.1", self.port)

    def keep(self, item: Received) -> None:
        with self._lock:
            self._received.append(item)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._received)

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.close()
            asyncio.run_coroutine_threadsafe(server.wait_closed(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
