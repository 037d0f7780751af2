"""Commands on the first lines of a staff reply: #note, #label, #close, #reopen, #stage, #assign."""

from __future__ import annotations

import re
from dataclasses import dataclass

from classifiers.types import LABELS

HELP = """Candour understands these commands on the first lines of a reply:
  #note            the rest of the message is an internal note: not sent to the complainant
  #label LABEL     reclassify the case (one of: {labels})
  #close           close the case (#close withdrawn: the complainant withdrew it)
  #reopen          reopen a closed case
  #stage N         escalate the case to stage N
  #assign ADDRESS  assign the case to a member of staff
  #interim         send the text, but it is not the stage response (the clock keeps running)
Any text after the commands is sent to the complainant, unless #note is given.""".format(
    labels=", ".join(LABELS)
)

_COMMAND = re.compile(r"^\s*#([A-Za-z]+)\b[ \t]*(.*?)\s*$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Command:
    name: str
    argument: str


@dataclass(frozen=True)
class StaffReply:
    """A staff reply split into its commands, its text, and any errors."""

    commands: tuple[Command, ...]
    text: str
    errors: tuple[str, ...]

    @property
    def is_note(self) -> bool:
        return any(c.name == "note" for c in self.commands)

    @property
    def relay(self) -> bool:
        """Whether the text goes to the complainant."""
        return not self.errors and not self.is_note and bool(self.text.strip())


def _check(name: str, argument: str) -> str | None:
    if name in {"note", "reopen", "interim"}:
        return None
    if name == "close":
        return (
            None
            if argument in {"", "withdrawn", "resolved"}
            else f"#close {argument}: say #close or #close withdrawn"
        )
    if name == "label":
        return None if argument in LABELS else f"#label {argument}: not one of {', '.join(LABELS)}"
    if name == "stage":
        return (
            None
            if argument.isdigit() and int(argument) >= 1
            else f"#stage {argument}: give a stage number"
        )
    if name == "assign":
        return None if _ADDRESS.match(argument) else f"#assign {argument}: give an email address"
    return f"#{name}: unknown command"


def parse_staff_reply(text: str) -> StaffReply:
    """Read commands from the first lines (blank lines between them allowed)."""
    lines = text.splitlines()
    commands: list[Command] = []
    errors: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        match = _COMMAND.match(line)
        if match is None:
            break
        name, argument = match.group(1).lower(), match.group(2)
        problem = _check(name, argument)
        if problem:
            errors.append(problem)
        else:
            commands.append(Command(name, argument))
        index += 1
    body = "\n".join(lines[index:]).strip()
    return StaffReply(tuple(commands), body, tuple(errors))
