"""A plain (non-editable) install carries its templates, migrations and model files."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_contains_package_data_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = built.stdout + built.stderr
    assert "Warning" not in said, said[-3000:]  # the project's build warns of nothing
    [wheel] = list((tmp_path / "dist").glob("candour_triage-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "replies/templates/acknowledgement.txt",
        "models/migrations/env.py",
        "models/migrations/script.py.mako",
        "models/migrations/versions/0001_initial_schema.py",
        "daemon/cli/main.py",
        "daemon/triage/pipeline.py",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any(n.startswith("tests/") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    config = tmp_path / "candour.toml"
    config.write_text(
        (REPO / "config.example.toml")
        .read_text()
        .replace("sqlite:////var/lib/candour/candour.db", f"sqlite:///{tmp_path / 'c.db'}")
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from daemon.cli.main import main; main()",
            "db",
            "upgrade",
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import daemon, replies; print(daemon.__file__, replies.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(REPO) not in probe.stdout  # really the installed copy
