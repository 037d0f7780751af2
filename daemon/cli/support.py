"""What every `candour` command shares: the --config option, exit codes, and failing well."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from daemon.config import Config, ConfigError, MailboxConfig, load_config

if TYPE_CHECKING:
    from models.database import Database

DEFAULT_CONFIG = Path("/etc/candour/candour.toml")
EXIT_PROBLEM = 1  # usage, not found, bad input
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_TEMPFAIL = 75  # try again later (EX_TEMPFAIL): a mailbox or the database is busy

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    envvar="CANDOUR_CONFIG",
    show_default=True,
    help="Configuration file (TOML).",
)


def fail(message: str, code: int = EXIT_PROBLEM) -> NoReturn:
    """Print `candour: message` on stderr and exit with `code`."""
    click.echo(f"candour: {message}", err=True)
    sys.exit(code)


def one_mailbox(config: Config, name: str | None) -> MailboxConfig:
    """The mailbox named `name`, or the first when None; exit 1 when there is none."""
    if name is None:
        return config.mailbox[0]
    try:
        return config.mailbox_named(name)
    except ConfigError as exc:
        fail(str(exc))


def load_or_fail(path: Path) -> Config:
    """The validated configuration, or exit 2 with the errors."""
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(f"configuration error:\n{exc}", EXIT_CONFIG)


@contextmanager
def database(config: Config) -> Iterator[Database]:
    """The configured database, schema upgraded; exit 3 if it cannot be used."""
    from models.database import Database, DatabaseError

    db = Database(config.database.url)
    try:
        db.upgrade()
        yield db
    except DatabaseError as exc:
        fail(str(exc), EXIT_DATABASE)
    finally:
        db.dispose()


class LazyGroup(click.Group):
    """A command group whose named subcommands are imported only when used or listed.

    `lazy_subcommands` maps a command name to "module:attribute" (click's documented
    lazy-loading pattern).
    """

    def __init__(
        self, *args: Any, lazy_subcommands: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_subcommands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command
