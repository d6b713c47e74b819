"""Matching user-typed text inside columns, the same way on SQLite and PostgreSQL.

Search text goes into a ``LIKE`` pattern, where ``%`` and ``_`` are wildcards:
left as they are, ``100%`` would match every text containing ``100`` and
``a_b`` would match ``axb``. Every search built from user text goes through
``contains_text``, which escapes the wildcards (and the escape character
itself) and names the escape character in an ``ESCAPE`` clause, since
SQLite has no default one and PostgreSQL's can be changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_

LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """``text`` as a ``LIKE`` pattern that matches only itself (escaped with ``LIKE_ESCAPE``)."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def contains_text(*columns: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """Whether any of ``columns`` contains ``text``, ignoring case, wildcards taken literally."""
    pattern = f"%{escape_like(text.lower())}%"
    return or_(*(func.lower(column).like(pattern, escape=LIKE_ESCAPE) for column in columns))
