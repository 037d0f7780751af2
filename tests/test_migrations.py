"""Schema migrations: the head the daemon expects, and what the migrations build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from models.database import SCHEMA_HEAD, Database
from models.schema import Base

REPO = Path(__file__).resolve().parent.parent


def test_schema_head_is_the_newest_migration(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert db.revision() == (None, SCHEMA_HEAD)
    db.upgrade()
    assert db.revision() == (SCHEMA_HEAD, SCHEMA_HEAD)


def test_migrations_build_what_the_models_describe(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_current_database_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Database(url).upgrade()
    probe = (
        "import sys; from models.database import Database; "
        f"Database({url!r}).upgrade(); print('alembic' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "False"
