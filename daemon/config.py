"""Configuration: the TOML file, validated once at start into frozen typed objects.

Every error names the file, the key and what is wrong, so a sysadmin can fix it
without reading code. Unknown keys are errors (a typo must not be silently ignored).
Secrets are never required in the file itself: `password_credential`, `_file` or `_env`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from classifiers.config import ClassifierConfig
from daemon import logs
from daemon.credentials import read_credential
from daemon.mail.authentication import StaffAuthenticationConfig
from daemon.policy import Address as Address
from daemon.policy import CalendarConfig as CalendarConfig
from daemon.policy import ConfigError as ConfigError
from daemon.policy import Limit as Limit
from daemon.policy import PolicyConfig as PolicyConfig
from daemon.policy import RemindersConfig as RemindersConfig
from daemon.policy import StageConfig as StageConfig
from daemon.policy import Strict as _Strict
from replies.forwarding import AttachmentLimits
from replies.letterhead import Letterhead, SignpostConfig
from replies.smtp import SmtpConfig

Security = Literal["none", "starttls", "tls"]
Region = Literal["ENG", "WLS", "SCT", "NIR"]


class _Secret(_Strict):
    """A table that may hold credentials: a systemd credential, a file or the environment."""

    username: str | None = None
    # A systemd credential (LoadCredential=NAME:...), read from $CREDENTIALS_DIRECTORY/NAME.
    password_credential: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    password_file: Path | None = None
    password_env: str | None = None

    def password(self) -> str | None:
        """Return the password, or None when no credential is configured; from then on it
        is kept out of this process's logs (daemon.logs.never_log). Raises as _password."""
        value = self._password()
        logs.never_log(value)
        return value

    def _password(self) -> str | None:
        """Return the password, or None when no credential is configured.

        Raises ConfigError when the credential, file or variable named is missing.
        """
        if self.password_credential is not None:
            return read_credential(self.password_credential)
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"password_file {self.password_file}: cannot be read ({exc.strerror})"
                ) from exc
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"password_env: environment variable {self.password_env} is not set"
                )
            return value
        return None


class DaemonConfig(_Strict):
    state_dir: Path = Path("/var/lib/candour")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    batch_size: int = Field(default=200, ge=1, le=5000)
    # Processes that parse and classify incoming mail while the daemon records an earlier
    # batch (0: do it in the daemon's own process, one core only). Two keep two cores busy
    # in a backlog; the second is spawned only when the first is busy.
    prepare_processes: int = Field(default=2, ge=0, le=32)
    # A secret for signing per-case reply addresses; generated in state_dir when absent.
    secret_file: Path | None = None


class DatabaseConfig(_Strict):
    url: str = "sqlite:////var/lib/candour/candour.db"

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value


def split_listen(value: str) -> tuple[str, int]:
    """("127.0.0.1", 9464) from "127.0.0.1:9464" ("[::1]:9464" for IPv6). Raises ValueError."""
    parts = urlsplit(f"//{value}")
    if not parts.hostname or parts.port is None or parts.path or parts.username:
        raise ValueError('must be host:port, e.g. "127.0.0.1:9464"')
    return parts.hostname, parts.port


class MetricsConfig(_Strict):
    """`[metrics]`: Prometheus metrics over HTTP (daemon.service.metrics); off by default."""

    enabled: bool = False
    # The page has no password: an address other than loopback must be asked for.
    allow_non_loopback: bool = False
    listen: str = "127.0.0.1:9464"

    @field_validator("listen")
    @classmethod
    def _loopback(cls, value: str, info: ValidationInfo) -> str:
        host, _ = split_listen(value)
        if host != "localhost" and not info.data.get("allow_non_loopback"):
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ValueError(
                    f"{host} is not a loopback address (127.0.0.1, ::1); the metrics page "
                    "has no password: set allow_non_loopback = true to serve it there"
                )
        return value


class SmtpSettings(_Secret, SmtpConfig):
    """`[smtp]`: replies.smtp's settings plus where its password comes from."""


class ImapConfig(_Secret):
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Security = "tls"
    username: str  # required for IMAP, optional for SMTP
    folder: str = "INBOX"
    # Where copies of what Candour sends are appended; found by SPECIAL-USE when absent.
    sent_folder: str | None = None
    quarantine_keyword: str = "$CandourQuarantined"
    triaged_keyword: str = "$CandourTriaged"
    # Staff relabel a case by moving its message into <label_folders>/<label>; "" disables.
    label_folders: str = "Candour/Label"
    idle: bool = True
    # Servers drop IDLE after 30 minutes (RFC 2177 asks clients to re-issue within 29).
    idle_renew_seconds: float = Field(default=600.0, gt=0, lt=1740)
    poll_seconds: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=60.0, gt=0)


class RoutesConfig(_Strict):
    """Where each kind of message goes (staff copies). Missing routes fall back to `review`."""

    complaint: Address | None = None
    feedback: Address | None = None
    data_protection: Address | None = None
    safeguarding: Address | None = None
    hr: Address | None = None
    social_care: Address | None = None
    review: Address | None = None
    # Concerns kept apart from complaints and grievances (the officer who deals with each).
    whistleblowing: Address | None = None
    fraud: Address | None = None  # e.g. the Director of Finance

    def for_label(self, label: str) -> str | None:
        value: str | None = getattr(self, label, None)
        return value or self.review or self.complaint


class BoardReportsConfig(_Strict):
    """Who gets the board report after each month or quarter (daemon.reports.board)."""

    to: tuple[Address, ...] = ()
    every: Literal["month", "quarter"] = "quarter"


class MailboxConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    address: Address
    organisation: str
    ack_within_working_days: int = Field(default=1, ge=0, le=30)
    region: Region = "ENG"
    timezone: str = "Europe/London"
    reference_prefix: str = Field(default="CMP", pattern=r"^[A-Z]{2,6}$")
    # Loop guard: never more automatic replies than this to one sender in 24 hours.
    max_replies_per_sender_per_day: int = Field(default=3, ge=1)
    # Mail older than this when first seen (a backlog) is recorded but not acknowledged.
    acknowledge_max_age_days: int = Field(default=30, ge=0)
    # Extra addresses that are this mailbox too (aliases): never acknowledged.
    aliases: tuple[Address, ...] = ()
    templates_dir: Path | None = None
    # Who may act as staff: any address at these domains, plus these exact addresses.
    staff_domains: tuple[str, ...] = ()
    staff_addresses: tuple[Address, ...] = ()
    # Show staff names/addresses to complainants in relayed replies (default: hidden).
    show_staff_identity: bool = False
    # Repeat contact: flag a sender who opens more than this many cases in that many days.
    repeat_contact_cases: int = Field(default=3, ge=1)
    repeat_contact_days: int = Field(default=7, ge=1)
    # #restrict without a date: the restriction's review falls this many days later.
    restriction_review_days: int = Field(default=90, ge=1)
    # Web forms: the name of the body's field holding the person's address ("Email: ...").
    form_email_field: str | None = None
    # Pseudonymous community mailbox: cases are known by the member's username.
    pseudonymous: bool = False
    pseudonym_pattern: str = r"(?im)^\s*user\s*-?\s*name\s*[:\-–]\s*([A-Za-z0-9_.\-]{2,40})\s*$"
    pseudonym_registry: Path | None = None  # CSV: address,username
    # The people this mailbox serves (one address per line, or a CSV's first column).
    # Complaints from anyone else are flagged non_service_user and handled as
    # non_service_users says: "investigate" (as any complaint), "acknowledge" (answered and
    # kept for analysis, no stage clock: staff #accept to investigate), "log" (no reply).
    service_users: Path | None = None
    non_service_users: Literal["investigate", "acknowledge", "log"] = "acknowledge"
    # Languages this mailbox handles (ISO 639-1). Mail in any other is acknowledged as a
    # complaint and goes to review, never signposted; "cy" also selects the Welsh
    # templates (acknowledgement.cy.txt...) for mail written in Welsh.
    languages: tuple[Annotated[str, Field(pattern=r"^[a-z]{2}$")], ...] = ("en",)
    # How soon staff should confirm a signposted (out-of-scope) case's referral; it waits in
    # `referral_pending` until then. With `referral_auto_close`, a referral nobody objected
    # to by then is closed as referred; by default a person always confirms.
    referral_confirm_within: Limit = "2 working days"
    # Languages the automatic replies are written in: a sender writing in one of these gets
    # `<template>.<language>.txt` where it exists (the package has Welsh, "cy").
    reply_languages: tuple[Annotated[str, Field(pattern=r"^[a-z]{2}$")], ...] = ("en",)
    referral_auto_close: bool = False
    routes: RoutesConfig = RoutesConfig()
    signpost: SignpostConfig = SignpostConfig()
    board_reports: BoardReportsConfig = BoardReportsConfig()
    # What staff copies may carry of a stranger's attachments (replies.forwarding).
    attachments: AttachmentLimits = AttachmentLimits()
    staff_authentication: StaffAuthenticationConfig = StaffAuthenticationConfig()
    # How long each label's case records are kept after the case closes ("6 years",
    # "18 months", "400 days"); then their content is purged and their figures kept
    # (daemon.casework.retention). A label not named here is kept.
    retention: dict[
        Literal["complaint", "feedback", "data_protection", "safeguarding", "hr", "social_care"],
        Annotated[str, Field(pattern=r"^\s*\d{1,4}\s+(years?|months?|days?)\s*$")],
    ] = Field(default_factory=dict)
    policy: PolicyConfig = PolicyConfig()
    calendar: CalendarConfig = CalendarConfig()
    reminders: RemindersConfig = RemindersConfig()
    imap: ImapConfig

    @field_validator("pseudonym_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        if compiled.groups < 1:
            raise ValueError("needs one (group) capturing the username")
        return value

    @property
    def acknowledge_limit(self) -> str:
        return self.policy.acknowledge or f"{self.ack_within_working_days} working days"

    def is_staff(self, address: str) -> bool:
        address = address.lower()
        if address in self.staff_addresses:
            return True
        domain = address.rsplit("@", 1)[-1]
        return any(domain == d.lower().lstrip("@") for d in self.staff_domains)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/London)") from exc
        return value

    @property
    def language_set(self) -> frozenset[str]:
        return frozenset(self.languages)

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @cached_property
    def letterhead(self) -> Letterhead:
        """Who replies.compose writes as for this mailbox."""
        return Letterhead(self.address, self.organisation, self.timezone, self.signpost)

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset((self.address, *self.aliases))


class Config(_Strict):
    daemon: DaemonConfig = DaemonConfig()
    database: DatabaseConfig = DatabaseConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    metrics: MetricsConfig = MetricsConfig()
    smtp: SmtpSettings
    mailbox: tuple[MailboxConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_mailboxes(self) -> Config:
        names = [m.name for m in self.mailbox]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"mailbox names must be unique; repeated: {', '.join(dupes)}")
        return self

    def mailbox_named(self, name: str) -> MailboxConfig:
        for mailbox in self.mailbox:
            if mailbox.name == name:
                return mailbox
        raise ConfigError(f"no [[mailbox]] named {name!r}")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate an already-parsed TOML document. Raises ConfigError naming key and problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A mailbox that fails leaves the tuple empty, and pydantic says that too: noise.
        inside = {str(e["loc"][0]) for e in errors if len(e["loc"]) > 1}
        lines = [
            f"{source}: {_location(tuple(e['loc']))}: {_plain(e)}"
            for e in errors
            if not (e["type"] == "too_short" and len(e["loc"]) == 1 and e["loc"][0] in inside)
        ]
        raise ConfigError("\n".join(lines)) from None


# Pydantic's wording for the commonest mistakes, as a sysadmin would put it.
_PLAIN = {
    "extra_forbidden": "unknown key (typo?)",
    "missing": "is required",
    "int_parsing": "must be a whole number, e.g. 587 (no quotes)",
    "int_type": "must be a whole number, e.g. 587 (no quotes)",
    "float_parsing": "must be a number, e.g. 0.5",
    "float_type": "must be a number, e.g. 0.5",
    "bool_parsing": "must be true or false (no quotes)",
    "bool_type": "must be true or false (no quotes)",
    "string_type": 'must be text in quotes, e.g. "example"',
}


def _plain(error: Any) -> str:
    kind = str(error["type"])
    if kind in _PLAIN:
        return _PLAIN[kind]
    message = str(error["msg"])
    if kind == "literal_error":
        return message.replace("Input should be", "must be")
    if kind == "too_short":
        return f"needs at least {error.get('ctx', {}).get('min_length', 1)} entry"
    if kind.startswith(("greater", "less")):
        return message.replace("Input should be", "must be")
    return message.removeprefix("Value error, ")


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at `path`. Raises ConfigError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, str(path))
