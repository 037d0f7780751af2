"""Insert-only rows written in bulk: case history events, incoming messages, outbox rows.

A batch of 200 messages adds some 1,400 such rows. As ORM objects each costs ~110 us of
unit-of-work bookkeeping; as one executemany per table, ~12 us. Code that records many
rows in one transaction (the pipeline, the outbox sender) turns buffering on with
`buffered(session)`; everywhere else `add` is a plain `session.add`.

While buffering, rows are held in `session.info` and written, new cases first flushed so
that their ids are known:
- before any ORM query the session runs (so reads see them, as autoflush would),
- before the transaction, or a savepoint, commits.
A savepoint must start with an empty buffer (call `write` before `begin_nested`), and a
caller that rolls a savepoint back calls `discard`: rows never outlive their savepoint.

New cases are ORM objects (they are read and changed while their batch is recorded). On
PostgreSQL their ids are taken from the table's sequence in one query before the flush, so
the flush is a plain executemany: without ids it would be one INSERT ... RETURNING of all
the batch's cases (~3,000 parameters), which psycopg cannot cache and re-splits for every
batch, and PostgreSQL plans afresh.

On PostgreSQL the rows are written with COPY ... FROM STDIN, not an executemany of
INSERTs: measured on 840-row batches of case events, 6 us of the daemon's CPU and 15-17 us
of the server's a row, against 27-32 and 25-37 (bench/README.md, twelfth round). The
values go through the columns' bind processors and scalar defaults as an INSERT's would,
and a driver error is raised as SQLAlchemy's (IntegrityError, OperationalError...), the
connection invalidated when it is lost, exactly as for a statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Table, event, insert, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from models.schema import Base, Case

_ON = "candour.bulk.on"
_ROWS = "candour.bulk.rows"

Row = tuple[type[Base], dict[str, Any], Case | None]

_CASE_IDS = text(
    """SELECT nextval(pg_get_serial_sequence('"case"', 'id')) FROM generate_series(1, :n)"""
)


def add(session: Session, model: type[Base], values: dict[str, Any], case: Case | None) -> None:
    """Add an insert-only row; `case` (when given) fills its case_id, new case or not."""
    if session.info.get(_ON):
        rows: list[Row] = session.info.setdefault(_ROWS, [])
        rows.append((model, values, case))
        return
    row = model(**values)
    if case is not None:
        row.case = case  # type: ignore[attr-defined]
    session.add(row)


def write(session: Session) -> None:
    """Insert what is buffered now: one statement per table, in the order first added."""
    rows: list[Row] | None = session.info.pop(_ROWS, None)
    if not rows:
        return
    if any(case is not None and case.id is None for _, _, case in rows):
        session.flush()  # new cases get their ids
    by_model: dict[type[Base], list[dict[str, Any]]] = {}
    for model, values, case in rows:
        # Every row of a table must have the same keys for one executemany.
        values = {**values, "case_id": case.id if case is not None else values.get("case_id")}
        by_model.setdefault(model, []).append(values)
    connection = session.connection()
    copying = connection.dialect.name == "postgresql"
    for model, values_list in by_model.items():
        table: Table = model.__table__  # type: ignore[assignment]
        left_out = _left_out_defaults(table, values_list[0]) if copying else None
        if left_out is not None:
            _copy(connection, table, values_list, left_out)
        else:
            # The Table, not the mapped class: a plain Core executemany.
            session.execute(insert(table), values_list)


def _left_out_defaults(table: Table, values: dict[str, Any]) -> list[Column[Any]] | None:
    """The columns `values` leaves out that have a default, for COPY to fill in; None when
    one of those defaults is not a constant (COPY would skip a callable or SQL default,
    so such rows take an INSERT)."""
    left_out = [c for c in table.columns if c.key not in values and c.default is not None]
    if not all(c.default is not None and c.default.is_scalar for c in left_out):
        return None
    return left_out


def _copy(
    connection: Connection, table: Table, rows: list[dict[str, Any]], defaults: list[Column[Any]]
) -> None:
    """Insert `rows` (all with the same keys) with one COPY ... FROM STDIN, the columns
    `defaults` set to their constant defaults."""
    import psycopg
    from psycopg import sql

    dialect = connection.dialect
    keys = list(rows[0])
    given = [table.c[key] for key in keys]
    constants = [c.default.arg for c in defaults]  # type: ignore[union-attr]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in given]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c.name) for c in given + defaults),
    )
    driver: Any = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [
                    row[key] if process is None else process(row[key])
                    for key, process in zip(keys, processors, strict=True)
                ]
                copy.write_row(values + constants)
    except psycopg.Error as exc:
        # As SQLAlchemy raises for a statement: its own exception class, and a connection
        # that was lost invalidated (the transaction's retry reconnects).
        lost = dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            f"COPY {table.name}",
            None,
            exc,
            psycopg.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc


def discard(session: Session) -> None:
    """Forget what is buffered (its savepoint was rolled back)."""
    session.info.pop(_ROWS, None)


@contextmanager
def buffered(session: Session) -> Iterator[Session]:
    """Buffer `add` in this session until the block ends (its rows are written by then)."""
    session.info[_ON] = True
    try:
        yield session
        write(session)
    finally:
        session.info.pop(_ON, None)
        discard(session)


@event.listens_for(Session, "do_orm_execute")
def _before_query(state: ORMExecuteState) -> None:
    if state.session.info.get(_ROWS) and state.is_select:
        write(state.session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write(session)


@event.listens_for(Session, "before_flush")
def _case_ids(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    """On PostgreSQL, give the new cases their ids from the sequence, in one query."""
    new = [o for o in session.new if isinstance(o, Case) and o.id is None]
    if len(new) < 2 or session.get_bind().dialect.name != "postgresql":
        return
    ids = session.connection().execute(_CASE_IDS, {"n": len(new)}).scalars().all()
    # In the order they were added, as the flush would have numbered them.
    new.sort(key=lambda case: inspect(case).insert_order)
    for case, case_id in zip(new, ids, strict=True):
        case.id = case_id
