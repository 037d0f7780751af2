"""The PostgreSQL paths: migrations, the pipeline and the daemon on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.database import Database
from tests.conftest import Setup, make_mail
from tests.mailstack import write_config

pytestmark = pytest.mark.postgres


def test_migrations_reach_head_on_postgresql(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    db.upgrade()  # idempotent
    current, head = db.revision()
    assert current == head
    db.dispose()


def test_daemon_on_postgresql_acknowledges_once(setup: Setup, pg_url: str, tmp_path: Path) -> None:
    write_config(
        setup.config_path,
        imap_port=setup.dovecot.port,
        user=setup.user,
        address=setup.address,
        smtp_port=setup.sink.port,
        db_url=pg_url,
    )
    raw, _ = make_mail(sender="Pat <pat.pg@example.net>")
    setup.append(raw)
    setup.append(raw)  # the same message delivered twice
    assert setup.cli("run", "--once").returncode == 0
    assert setup.cli("run", "--once").returncode == 0
    assert [m.rcpt_tos for m in setup.outgoing()] == [["pat.pg@example.net"]]
    [case] = setup.cases()
    assert case["acknowledged_at"] is not None
