"""config.example.toml documents every key the configuration takes, in its own table, so
the two cannot drift apart (commented-out keys count: `# key = value`)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from daemon.config import Config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
_TABLE = re.compile(r"^#?\s*\[\[?([a-z_.]+)\]\]?")
_KEY = re.compile(r"^#?\s*([a-z_]+)\s*=")
# Lists of tables the example writes inline, as one key (`stages = [{ name = ... }]`).
INLINE_LISTS = {"mailbox.policy.stages"}
# Tables that are maps (label -> value): their keys are data, the table is the setting.
MAPS = {"mailbox.retention"}


def _documented() -> set[str]:
    """Every `table.key` the example sets or shows commented out."""
    found: set[str] = set()
    table = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        header = _TABLE.match(stripped)
        if header:
            table = header.group(1)
            continue
        key = _KEY.match(stripped)
        if key and table in MAPS:
            found.add(table)
        elif key:
            found.add(f"{table}.{key.group(1)}" if table else key.group(1))
    return found


def _fields(model: type[BaseModel], prefix: str) -> set[str]:
    """Every `table.key` of `model`, nested tables included."""
    out: set[str] = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        path = f"{prefix}.{name}" if prefix else name
        if path in INLINE_LISTS:
            out.add(path)
            continue
        inner = getattr(kind, "__args__", (kind,))
        nested = [t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)]
        if nested:
            out |= _fields(nested[0], path)
        else:
            out.add(path)
    return out


def test_every_configuration_key_is_in_the_example() -> None:
    missing = sorted(_fields(Config, "") - _documented())
    assert missing == []


def test_the_example_names_no_key_the_configuration_does_not_take() -> None:
    unknown = sorted(_documented() - _fields(Config, ""))
    assert unknown == []
