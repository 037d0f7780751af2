"""Persistence: the SQLAlchemy schema, the one owner of the database engine (`database`),
case and message queries (`cases`), the case lifecycle through the complaints procedure
(`lifecycle`, which takes a `Procedure` value), the outbox, bulk inserts, corrections, and
Alembic migrations. It imports nothing else of Candour's."""
