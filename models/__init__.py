"""Persistence: the schema, the one owner of the database engine, and Alembic migrations."""
