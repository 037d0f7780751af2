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

from classifiers.types import LABELS
from daemon.casework import representatives
from daemon.casework import staff_actions as do
from daemon.casework.staff_actions import Acting

_COMMAND = re.compile(r"^\s*#([A-Za-z]+)\b[ \t]*(.*?)\s*$")


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str  # as the help shows it, e.g. "#label LABEL"
    help: str
    check: Callable[[str], str | None]  # the argument -> what is wrong with it, or None
    apply: Callable[[Acting, str], str | None]  # -> why it could not be done, or None
    private: bool = False  # the reply's text is an internal note
    interim: bool = False  # the reply's text is relayed but does not answer the stage
    # The rest of the command's line is the first line of the reply's text (#note, #interim),
    # not an argument: a one-line "#note called Sam" is a note saying "called Sam".
    text_follows: bool = False


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            "note",
            "#note",
            "the rest of the message is an internal note: not sent to the complainant",
            do.no_argument,
            do.nothing,
            private=True,
            text_follows=True,
        ),
        CommandSpec(
            "label",
            "#label LABEL",
            f"reclassify and re-route the case (one of: {', '.join(LABELS)})",
            do.check_label,
            do.label,
        ),
        CommandSpec(
            "early",
            "#early",
            "start early resolution, with its own time limit (stage 1 waits for #accept)",
            do.no_argument,
            do.early,
        ),
        CommandSpec(
            "accept",
            "#accept",
            "the complaint's nature is established: stage 1 starts now",
            do.no_argument,
            do.accept,
        ),
        CommandSpec(
            "extend",
            "#extend N REASON",
            "move the stage's deadline on N working days; the complainant is told why",
            do.check_extend,
            do.extend,
        ),
        CommandSpec(
            "close",
            "#close OUTCOME",
            "close with an outcome: upheld, partly-upheld, not-upheld, resolved-early,"
            " withdrawn, referred (then a summary)",
            do.check_close,
            do.close,
        ),
        CommandSpec("reopen", "#reopen", "reopen a closed case", do.no_argument, do.reopen),
        CommandSpec("stage", "#stage N", "escalate the case to stage N", do.check_stage, do.stage),
        CommandSpec(
            "assign",
            "#assign ADDRESS",
            "assign the case to a member of staff",
            do.check_assign,
            do.assign,
        ),
        CommandSpec(
            "remedy",
            "#remedy KIND TEXT",
            "record a remedy: apology, explanation, service-change, payment, other",
            do.check_remedy,
            do.remedy,
        ),
        CommandSpec(
            "lesson",
            "#lesson TEXT",
            "record a lesson or action (... owner ADDRESS due YYYY-MM-DD), chased until done",
            do.check_lesson,
            do.lesson,
        ),
        CommandSpec("done", "#done L-N", "a lesson or action is done", do.check_done, do.done),
        CommandSpec(
            "representative",
            "#representative Name <address> authority=pending|received|poa",
            "someone acts for the complainant: copied on replies, without personal details "
            "until their authority is received",
            representatives.check,
            representatives.apply,
        ),
        CommandSpec(
            "restrict",
            "#restrict [until DATE] WHY",
            "restrict the complainant's contact: repeats recorded, not acknowledged, until review",
            do.check_restrict,
            do.restrict,
        ),
        CommandSpec(
            "unrestrict", "#unrestrict", "lift the restriction", do.no_argument, do.unrestrict
        ),
        CommandSpec(
            "waive",
            "#waive time-limit WHY",
            "accept a complaint made after the policy's time limit, saying why",
            do.check_waive,
            do.waive,
        ),
        CommandSpec(
            "interim",
            "#interim",
            "send the text, but it is not the stage response (the clock keeps running)",
            do.no_argument,
            do.nothing,
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


def apply_commands(acting: Acting, reply: StaffReply) -> list[str]:
    """Do what the reply's commands say, in the order given; returns what could not be
    done, each also a `command.refused` case event."""
    problems = []
    for command in reply.commands:
        problem = command.spec.apply(acting, command.argument)
        if problem:
            said = f"#{command.name} {command.argument}".strip()
            acting.event("command.refused", f"{said}: {problem}")
            problems.append(f"{said}: {problem}")
    return problems
