"""Alembic migration environment (run through models.database.upgrade, not alembic.ini)."""
