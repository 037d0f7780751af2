"""Staff commands: `#name argument` lines at the top of a staff reply, as one table.

Each command is one row of `COMMANDS`: its usage and help (the help text staff get back is
generated from the table), a pure `check` of its argument, and `apply`, what it does to the
case in the caller's transaction. Two flags say how the rest of the reply is treated:
`private` (the text is an internal note, never relayed) and `interim` (relayed, but not
the stage's response, so the clock keeps running). A new command is one function and one
row here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from classifiers.types import LABELS
from daemon.casework.desk import Desk
from daemon.casework.relabel import retriage
from models import cases, lifecycle
from models.schema import Case

_COMMAND = re.compile(r"^\s*#([A-Za-z]+)\b[ \t]*(.*?)\s*$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What `#close ARGUMENT` may say, and the status it closes the case with.
_CLOSE_AS = {"": "closed", "resolved": "closed", "withdrawn": "withdrawn", "referred": "referred"}


@dataclass(frozen=True)
class Acting:
    """A staff member acting on a case: what every command's `apply` is given."""

    session: Session
    desk: Desk
    case: Case
    staff: str
    now: datetime


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str  # as the help shows it, e.g. "#label LABEL"
    help: str
    check: Callable[[str], str | None]  # the argument -> what is wrong with it, or None
    apply: Callable[[Acting, str], None]
    private: bool = False  # the reply's text is an internal note
    interim: bool = False  # the reply's text is relayed but does not answer the stage
    # The rest of the command's line is the first line of the reply's text (#note, #interim),
    # not an argument: a one-line "#note called Sam" is a note saying "called Sam".
    text_follows: bool = False


def _no_argument(argument: str) -> str | None:
    return None if not argument else "takes nothing after it: put your text on the next line"


def _nothing(acting: Acting, argument: str) -> None:
    return None


def _check_close(argument: str) -> str | None:
    if argument in _CLOSE_AS:
        return None
    return "say #close, #close withdrawn or #close referred"


def _close(acting: Acting, argument: str) -> None:
    reason = _CLOSE_AS[argument]
    lifecycle.close(acting.session, acting.case, acting.now, reason=reason, actor=acting.staff)


def _check_label(argument: str) -> str | None:
    return None if argument in LABELS else f"not one of {', '.join(LABELS)}"


def _label(acting: Acting, argument: str) -> None:
    retriage(
        acting.session,
        acting.desk,
        acting.case,
        argument,
        source="email-command",
        actor=acting.staff,
        now=acting.now,
    )


def _reopen(acting: Acting, argument: str) -> None:
    lifecycle.reopen(acting.session, acting.case, acting.now, actor=acting.staff)


def _check_stage(argument: str) -> str | None:
    if argument.isdigit() and int(argument) >= 1:
        return None
    return "give a stage number"


def _stage(acting: Acting, argument: str) -> None:
    case = acting.case
    if int(argument) != case.stage + 1:
        problem: str | None = (
            f"the case is at stage {case.stage}; the next stage is {case.stage + 1}"
        )
    else:
        problem = lifecycle.escalate(
            acting.session,
            case,
            acting.now,
            acting.desk.procedure,
            actor=acting.staff,
            by_complainant=False,
        )
    if problem:
        cases.add_event(
            acting.session, case, acting.now, "stage.refused", problem, actor=acting.staff
        )


def _check_assign(argument: str) -> str | None:
    return None if _ADDRESS.match(argument) else "give an email address"


def _assign(acting: Acting, argument: str) -> None:
    acting.case.assigned_to = argument.lower()
    cases.add_event(
        acting.session, acting.case, acting.now, "assigned", argument.lower(), actor=acting.staff
    )


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            "note",
            "#note",
            "the rest of the message is an internal note: not sent to the complainant",
            _no_argument,
            _nothing,
            private=True,
            text_follows=True,
        ),
        CommandSpec(
            "label",
            "#label LABEL",
            f"reclassify and re-route the case (one of: {', '.join(LABELS)})",
            _check_label,
            _label,
        ),
        CommandSpec(
            "close",
            "#close",
            "close the case (#close withdrawn: the complainant withdrew it; #close referred:"
            " confirm a referral elsewhere)",
            _check_close,
            _close,
        ),
        CommandSpec("reopen", "#reopen", "reopen a closed case", _no_argument, _reopen),
        CommandSpec("stage", "#stage N", "escalate the case to stage N", _check_stage, _stage),
        CommandSpec(
            "assign",
            "#assign ADDRESS",
            "assign the case to a member of staff",
            _check_assign,
            _assign,
        ),
        CommandSpec(
            "interim",
            "#interim",
            "send the text, but it is not the stage response (the clock keeps running)",
            _no_argument,
            _nothing,
            interim=True,
            text_follows=True,
        ),
    )
}

HELP = "\n".join(
    [
        "Candour understands these commands on the first lines of a reply:",
        *(f"  {spec.usage:<16} {spec.help}" for spec in COMMANDS.values()),
        "Commands go on the first lines, before any text. Any text after them is sent to the",
        "complainant, unless #note is given.",
    ]
)


@dataclass(frozen=True)
class Command:
    name: str
    argument: str

    @property
    def spec(self) -> CommandSpec:
        return COMMANDS[self.name]


@dataclass(frozen=True)
class StaffReply:
    """A staff reply split into its commands, its text, and any errors."""

    commands: tuple[Command, ...]
    text: str
    errors: tuple[str, ...]

    @property
    def is_note(self) -> bool:
        return any(c.spec.private for c in self.commands)

    @property
    def interim(self) -> bool:
        """Whether a relayed text leaves the stage unanswered."""
        return any(c.spec.interim for c in self.commands)

    @property
    def relay(self) -> bool:
        """Whether the text goes to the complainant."""
        return not self.errors and not self.is_note and bool(self.text.strip())


def parse_staff_reply(text: str) -> StaffReply:
    """Read commands from the first lines (blank lines between them allowed). Pure.

    A command that takes text (#note, #interim) lends the rest of its line to the text. A
    line that is a known command below the text is an error: it was meant as a command, and
    the reply is neither relayed nor half-applied.
    """
    lines = text.splitlines()
    commands: list[Command] = []
    errors: list[str] = []
    first_text: list[str] = []
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
        spec = COMMANDS.get(name)
        if spec is not None and spec.text_follows and argument:
            first_text.append(argument)
            argument = ""
        problem = spec.check(argument) if spec is not None else "unknown command"
        if problem:
            errors.append(f"#{name}{' ' + argument if argument else ''}: {problem}")
        else:
            commands.append(Command(name, argument))
        index += 1
    body = "\n".join([*first_text, *lines[index:]]).strip()
    errors.extend(_misplaced(lines[index:]))
    return StaffReply(tuple(commands), body, tuple(errors))


def _misplaced(lines: list[str]) -> list[str]:
    """Known commands on lines below the text: they would be relayed as words."""
    found = []
    for line in lines:
        match = _COMMAND.match(line)
        if match is not None and match.group(1).lower() in COMMANDS:
            found.append(
                f"#{match.group(1).lower()} is below your text: commands go on the first "
                "lines, before any text"
            )
    return found


def apply_commands(acting: Acting, reply: StaffReply) -> None:
    """Do what the reply's commands say, in the order given."""
    for command in reply.commands:
        command.spec.apply(acting, command.argument)
