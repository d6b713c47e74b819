"""Reading the event log in order, safely, while writers keep appending.

The log's order is the order in which writes became final:

* SQLite has one writer at a time and numbers events ``max(seq) + 1`` inside
  the write, so ``seq`` is gapless and in commit order.
* PostgreSQL writers in many processes commit side by side. ``seq`` comes from a
  sequence (unique and rising, but a transaction that took 7 may commit after
  one that took 8, and a rolled-back one leaves a gap), and every row records
  the transaction that wrote it (``tx``, from ``pg_current_xact_id()``). The
  log is read in ``(tx, seq)`` order, and only rows whose transaction is older
  than the oldest one still running (``pg_snapshot_xmin``). Every transaction
  below that horizon has ended, and every later one has a larger ``tx``, so a
  row can never appear behind a reader's cursor. A transaction that waited for
  another's narrow lock took its id after the other committed, so replaying in
  this order applies dependent writes in commit order.

A reader's cursor is the ``seq`` of the last event it saw: the read resumes
after that event's place in the order (its ``tx`` is looked up on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    Text,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from tuneback.storage import tables as t

_e = t.events.c

# The oldest transaction still running: rows written below it are final.
HORIZON = cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)


def ordered(query: Select[Any], dialect: str) -> Select[Any]:
    """``query`` over events in log order."""
    if dialect == "postgresql":
        return query.order_by(_e.tx, _e.seq)
    return query.order_by(_e.seq)


def after(conn: Connection, seq: int, dialect: str) -> ColumnElement[bool]:
    """Events past the one numbered ``seq`` in log order, and final (see the module doc)."""
    if dialect != "postgresql":
        return _e.seq > seq
    final = _e.tx < HORIZON
    if seq <= 0:
        return final
    found = conn.execute(
        select(_e.tx, _e.seq).where(_e.seq <= seq).order_by(_e.seq.desc()).limit(1)
    ).first()
    if found is None:
        return final
    return and_(final, tuple_(_e.tx, _e.seq) > tuple_(literal(found.tx), literal(found.seq)))


def page(
    conn: Connection,
    seq: int,
    limit: int,
    *,
    dialect: str,
    project: str | None = None,
    types: Sequence[str] | None = None,
) -> Any:
    """Up to ``limit`` rows of events after ``seq``, in log order."""
    query = select(t.events).where(after(conn, seq, dialect)).limit(limit)
    if project is not None:
        query = query.where(_e.project == project)
    if types:
        query = query.where(_e.type.in_(list(types)))
    return conn.execute(ordered(query, dialect))


def replay_pages(conn: Connection, dialect: str, size: int) -> Any:
    """Every event in log order, a page at a time (inside one transaction: all are final)."""
    last: tuple[int, int] | None = None
    while True:
        query = select(t.events)
        if last is not None:
            if dialect == "postgresql":
                query = query.where(or_(_e.tx > last[0], and_(_e.tx == last[0], _e.seq > last[1])))
            else:
                query = query.where(_e.seq > last[1])
        rows = conn.execute(ordered(query, dialect).limit(size)).all()
        if not rows:
            return
        yield rows
        final = rows[-1]
        last = (int(final.tx or 0), int(final.seq))
