"""Reply templates: editable plain-text files rendered in a Jinja2 sandbox.

A template's first line is `Subject: ...`, then a blank line, then the body. An
organisation overrides any template by putting a file of the same name in the mailbox's
`templates_dir`; the package's own templates are the fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"


class TemplateProblem(Exception):
    """A template is missing, malformed or uses a name it is not given."""


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(PACKAGE_TEMPLATES))]
        if override_dir is not None:
            loaders.insert(0, FileSystemLoader(str(override_dir)))
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=False,  # plain text mail
            keep_trailing_newline=True,
        )

    def render(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """Return (subject, body) of template `name`. Raises TemplateProblem."""
        try:
            text = self._env.get_template(f"{name}.txt").render(**context)
        except TemplateError as exc:
            raise TemplateProblem(f"template {name}.txt: {exc}") from exc
        head, sep, body = text.partition("\n\n")
        if not sep or not head.startswith("Subject:"):
            raise TemplateProblem(
                f"template {name}.txt must start with 'Subject: ...' and a blank line"
            )
        subject = " ".join(head.removeprefix("Subject:").split())
        return subject, body.strip() + "\n"
