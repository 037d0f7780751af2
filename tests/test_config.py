"""Configuration: errors name the file, the key and the problem; secrets stay outside."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent

MINIMAL = """
[smtp]
host = "127.0.0.1"

[[mailbox]]
name = "main"
address = "complaints@example.org"
organisation = "Example Trust"
[mailbox.imap]
host = "127.0.0.1"
username = "complaints"
password_file = "{secret}"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "candour.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_documents_every_key() -> None:
    config = load_config(REPO / "config.example.toml")
    assert config.mailbox[0].address == "complaints@example.org"
    assert config.smtp.security == "starttls"
    assert config.mailbox[0].imap.security == "tls"


def test_minimal_config_has_defaults(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = load_config(_write(tmp_path, MINIMAL.format(secret=secret)))
    mailbox = config.mailbox[0]
    assert mailbox.imap.password() == "s3cret"
    assert mailbox.ack_within_working_days == 1
    assert mailbox.region == "ENG"
    assert config.database.url.startswith("sqlite:")


def test_a_typo_in_a_key_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    text = MINIMAL.format(secret="/x").replace(
        'host = "127.0.0.1"\nusername', 'hots = "x"\nusername'
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message
    assert "mailbox[0].imap.hots: unknown key" in message
    assert "mailbox[0].imap.host: is required" in message
    assert "Tuple should have" not in message  # no noise about the mailbox list itself


@pytest.mark.parametrize(
    ("table", "key", "value", "says"),
    [
        ("smtp", "port", '"five"', "smtp.port: must be a whole number"),
        ("smtp", "security", '"ssl"', "smtp.security: must be 'none', 'starttls' or 'tls'"),
        ("daemon", "batch_size", "0", "daemon.batch_size: must be greater than or equal to 1"),
    ],
)
def test_errors_speak_plainly(tmp_path: Path, table: str, key: str, value: str, says: str) -> None:
    text = MINIMAL.format(secret="/x").replace(f"[{table}]\n", f"[{table}]\n{key} = {value}\n", 1)
    if f"[{table}]" not in text:
        text = f"[{table}]\n{key} = {value}\n" + text
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert says in str(error.value)
    assert "Input should" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('address = "complaints@example.org"', 'address = "not an address"'),
            "mailbox[0].address",
        ),
        (('name = "main"', 'name = "main"\nregion = "FRA"'), "mailbox[0].region"),
        (('host = "127.0.0.1"\n\n', 'host = "127.0.0.1"\nsecurity = "ssl"\n\n'), "smtp.security"),
        (('name = "main"', 'name = "main"\ntimezone = "Mars/Olympus"'), "unknown time zone"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = _write(tmp_path, MINIMAL.format(secret="/x").replace(*change, 1))
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_duplicate_mailbox_names_are_refused(tmp_path: Path) -> None:
    text = MINIMAL.format(secret="/x")
    mailbox = text[text.index("[[mailbox]]") :]
    with pytest.raises(ConfigError, match="repeated: main"):
        load_config(_write(tmp_path, text + mailbox))


def test_not_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[smtp\nhost="))
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "absent.toml")


def test_secrets_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL.format(secret="/x").replace('password_file = "/x"', 'password_env = "IMAP_PW"')
    config = load_config(_write(tmp_path, text))
    with pytest.raises(ConfigError, match="IMAP_PW is not set"):
        config.mailbox[0].imap.password()
    monkeypatch.setenv("IMAP_PW", "from-env")
    assert config.mailbox[0].imap.password() == "from-env"
    missing = load_config(_write(tmp_path, MINIMAL.format(secret=tmp_path / "nope")))
    with pytest.raises(ConfigError, match="cannot be read"):
        missing.mailbox[0].imap.password()
