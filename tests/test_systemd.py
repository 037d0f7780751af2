"""The systemd unit runs the real CLI, as its own user, with a state directory."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from click.testing import CliRunner

from daemon.cli.main import main

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "candour.service"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_runs_candour_as_its_own_user_and_restarts() -> None:
    service = _unit()["Service"]
    assert service["User"] == "candour"
    assert service["StateDirectory"] == "candour"
    assert service["Restart"] == "on-failure"
    assert "/etc/candour/candour.toml" in service["ExecStart"]
    assert service["ProtectSystem"] == "strict"


def test_unit_commands_exist_in_the_cli() -> None:
    service = _unit()["Service"]
    runner = CliRunner()
    for key in ("ExecStart", "ExecStartPre"):
        argv = shlex.split(service[key])
        assert argv[0].endswith("/candour")
        result = runner.invoke(main, [*argv[1:], "--help"])
        assert result.exit_code == 0, result.output


def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import pytest

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    copy = tmp_path / "candour.service"
    copy.write_text(UNIT.read_text().replace("/opt/candour/venv/bin/candour", "/bin/true"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True
    )
    problems = [line for line in result.stderr.splitlines() if "candour.service" in line]
    assert problems == [], problems


def test_the_unit_does_not_restart_when_a_human_must_act() -> None:
    unit = UNIT.read_text()
    [line] = [x for x in unit.splitlines() if x.startswith("RestartPreventExitStatus=")]
    assert set(line.split("=", 1)[1].split()) == {"2", "78"}


def test_exit_status_is_one_rule_for_once_and_the_daemon() -> None:
    from daemon.service.worker import exit_status

    assert exit_status(2, 0, 0) == 0
    assert exit_status(2, 1, 0) == 75  # one mailbox unreachable: try again later
    assert exit_status(2, 2, 1) == 75  # one needs a human, the other may recover
    assert exit_status(2, 2, 2) == 78  # none usable, a human must act
