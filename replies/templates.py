"""Reply templates: editable plain-text files rendered in a Jinja2 sandbox.

A template's first line is `Subject: ...`, then a blank line, then the body. An
organisation overrides any template by putting a file of the same name in the mailbox's
`templates_dir`; the package's own templates are the fallback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
)
from jinja2.sandbox import SandboxedEnvironment

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
# An edited override takes effect within this many seconds. Jinja2 checks a template's
# file on every get_template (a stat per loader per reply, ~3 % of the daemon's time in
# a backlog); a compiled template is reused for this long before being checked again.
RECHECK_SECONDS = 5.0


class TemplateProblem(Exception):
    """A template is missing, malformed or uses a name it is not given."""


class Templates:
    def __init__(
        self, override_dir: Path | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        loaders = [FileSystemLoader(str(PACKAGE_TEMPLATES))]
        if override_dir is not None:
            loaders.insert(0, FileSystemLoader(str(override_dir)))
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=False,  # plain text mail
            keep_trailing_newline=True,
        )
        self._monotonic = monotonic
        self._checked: dict[str, tuple[float, Template]] = {}

    def _template(self, filename: str) -> Template:
        now = self._monotonic()
        cached = self._checked.get(filename)
        if cached is not None and now - cached[0] < RECHECK_SECONDS:
            return cached[1]
        template = self._env.get_template(filename)  # recompiled if the file changed
        self._checked[filename] = (now, template)
        return template

    def exists(self, name: str) -> bool:
        """Whether template `name` is in the override directory or the package."""
        try:
            self._template(f"{name}.txt")
        except TemplateNotFound:
            return False
        return True

    def render(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """Return (subject, body) of template `name`. Raises TemplateProblem."""
        try:
            text = self._template(f"{name}.txt").render(**context)
        except TemplateError as exc:
            raise TemplateProblem(f"template {name}.txt: {exc}") from exc
        head, sep, body = text.partition("\n\n")
        if not sep or not head.startswith("Subject:"):
            raise TemplateProblem(
                f"template {name}.txt must start with 'Subject: ...' and a blank line"
            )
        subject = " ".join(head.removeprefix("Subject:").split())
        return subject, body.strip() + "\n"
