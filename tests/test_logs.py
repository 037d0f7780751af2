"""Log lines: one JSON event per write, so processes sharing stderr never split a line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from daemon import logs


class Writes:
    """A text stream that keeps every write() call apart."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        return None


@pytest.fixture
def stream() -> Iterator[Writes]:
    writes = Writes()
    logs.configure("info", file=writes)  # type: ignore[arg-type]
    yield writes
    logs.configure("info")


def test_each_event_is_one_write_of_a_whole_json_line(stream: Writes) -> None:
    structlog.get_logger("candour.test").info("case.opened", case="CMP-2026-00001")
    logging.getLogger("candour.stdlib").warning("from a library")
    assert len(stream.calls) == 2
    for call in stream.calls:
        assert call.endswith("\n")
        assert call.count("\n") == 1
    first, second = (json.loads(call) for call in stream.calls)
    assert first["event"] == "case.opened"
    assert (first["case"], first["level"]) == ("CMP-2026-00001", "info")
    assert (second["event"], second["level"]) == ("from a library", "warning")


def test_events_below_the_level_are_not_written(stream: Writes) -> None:
    structlog.get_logger("candour.test").debug("noise")
    assert stream.calls == []
