"""`candour check-config [--connect]`: problems, warnings and logins, each in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli.checks import state_dir_problem, warnings
from daemon.config import load_config
from tests.conftest import Setup
from tests.mailstack import free_port
from tests.test_staff_loop import ROUTES, _configure


def test_the_state_directory_must_be_writable(tmp_path: Path) -> None:
    assert state_dir_problem(tmp_path / "new" / "state") is None  # made at start
    problem = state_dir_problem(Path("/proc/nope"))
    assert problem is not None
    assert "/proc is not writable" in problem
    (tmp_path / "file").write_text("x")
    assert "not a directory" in str(state_dir_problem(tmp_path / "file" / "state"))


def test_a_mailbox_without_routes_or_staff_is_warned_about(setup: Setup) -> None:
    config = setup.config
    said = warnings(config)
    assert any("no [mailbox.routes]" in w for w in said)
    assert any("no staff_domains" in w for w in said)
    _configure(setup, ROUTES + '[mailbox.staff_authentication]\nauthserv_id = "mx.example.org"\n')
    assert warnings(setup.config) == []
    result = setup.cli("check-config")
    assert result.returncode == 0
    assert "OK (1 mailbox(es): main)" in result.stdout


def test_an_unwritable_state_directory_fails_the_check(setup: Setup) -> None:
    text = setup.config_path.read_text()
    setup.config_path.write_text(
        text.replace("[daemon]\n", '[daemon]\nstate_dir = "/proc/nope"\n#', 1)
    )
    assert load_config(setup.config_path).daemon.state_dir == Path("/proc/nope")
    result = setup.cli("check-config", check=False)
    assert result.returncode == 2
    assert "daemon.state_dir /proc/nope" in result.stderr


def test_connect_logs_in_everywhere_and_names_what_fails(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(setup, ROUTES)
    good = setup.cli("check-config", "--connect")
    assert good.returncode == 0, good.stderr
    assert "ok   database" in good.stdout
    assert f"IMAP 127.0.0.1:{setup.dovecot.port} logged in, INBOX selected" in good.stdout
    assert f"ok   SMTP 127.0.0.1:{setup.sink.port}: connected" in good.stdout
    monkeypatch.setenv("CANDOUR_TEST_IMAP_PASSWORD", "wrong")
    bad = setup.cli("check-config", "--connect", check=False)
    assert bad.returncode == 2
    assert f"FAIL mailbox main: IMAP 127.0.0.1:{setup.dovecot.port} as " in bad.stdout
    assert "login refused: [AUTHENTICATIONFAILED]" in bad.stdout  # words, not b'...'
    closed = free_port()
    text = setup.config_path.read_text().replace(f"port = {setup.sink.port}", f"port = {closed}")
    setup.config_path.write_text(text)
    monkeypatch.setenv("CANDOUR_TEST_IMAP_PASSWORD", "secret")
    gone = setup.cli("check-config", "--connect", check=False)
    assert f"FAIL SMTP 127.0.0.1:{closed}:" in gone.stdout
