"""An SMTP peer whose behaviour the fault schedule switches: accept, refuse, defer, hang,
or drop the connection mid-DATA (after taking the whole message, half the time keeping it).

Built on the benchmark's lean receiver (bench.sink), so what it keeps reads like the tests'
sink: `messages` are tests.mailstack.Received values.
"""

from __future__ import annotations

import asyncio
import random
from typing import Literal

from bench.sink import LeanSink, _Session
from tests.mailstack import Received

Mode = Literal["accept", "refuse", "defer", "hang", "drop"]
MODES: tuple[Mode, ...] = ("accept", "refuse", "defer", "hang", "drop")


class _FaultySession(_Session):
    sink: FaultyPeer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.sink.mode == "hang":  # never greets: the client's connect times out
            assert isinstance(transport, asyncio.Transport)
            self.transport = None
            self.sink.hung.append(transport)
            return
        super().connection_made(transport)

    def _command(self, line: str) -> None:
        verb = line.partition(" ")[0].upper()
        mode = self.sink.mode
        if verb == "MAIL" and mode == "defer":
            self._reply("451 4.3.0 fault injection: try again later")
        elif verb == "DATA" and mode == "refuse" and self.rcpt_tos:
            self._reply("554 5.7.1 fault injection: refused")
        else:
            super()._command(line)

    def _reply(self, text: str) -> None:
        if text == "250 OK" and self.sink.mode == "drop" and self.sink.taking_data:
            # The whole message arrived; the answer never leaves. Did it deliver? Half the
            # time it did (the peer keeps it), as with a relay that queued and then died.
            self.sink.taking_data = False
            if not self.sink.rng.random() < 0.5:
                self.sink.discard_last()
            if self.transport is not None:
                self.transport.abort()
            return
        super()._reply(text)

    def _message(self) -> bool:
        self.sink.taking_data = True
        try:
            return super()._message()
        finally:
            self.sink.taking_data = False


class FaultyPeer(LeanSink):
    """A LeanSink whose `mode` decides how each new command or connection is answered."""

    def __init__(self, seed: int, port: int | None = None) -> None:
        super().__init__(port)
        self.mode: Mode = "accept"
        self.rng = random.Random(seed)
        self.taking_data = False
        self.hung: list[asyncio.Transport] = []

    async def _serve(self) -> asyncio.Server:
        return await self._loop.create_server(lambda: _FaultySession(self), "127.0.0.1", self.port)

    def discard_last(self) -> None:
        with self._lock:
            self._received.pop()

    def set_mode(self, mode: Mode) -> None:
        """Switch behaviour; leaving `hang` closes the connections left hanging."""
        self.mode = mode
        if mode != "hang":
            hung, self.hung = self.hung, []
            for transport in hung:
                self._loop.call_soon_threadsafe(transport.abort)

    def received(self) -> list[Received]:
        return self.messages
