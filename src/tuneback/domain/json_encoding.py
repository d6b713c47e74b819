"""Fast JSON both ways, with the standard library for what the fast parts refuse.

Every JSON column a write fills (a run's inputs, params and metadata, a
feedback's value) and every exported row is encoded here, and every JSON column
and stored payload is parsed here. Both fast parts are several times faster
than :mod:`json`, which matters on the write path (each payload is read back
before it is stored) and at a million exported rows.

orjson refuses a few things data can hold: integers beyond 64 bits (run
metadata, feedback values), dict keys that are not strings, and text with a
lone surrogate. Those are encoded by the standard library instead, with the
same compact separators, so the result is valid JSON either way and the common
value pays for no check of its own. (orjson writes a non-finite number as null;
no stored value holds one, since payloads that do are refused.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from pydantic_core import from_json


def json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_bytes(data: Any) -> bytes:
    """``data`` as compact JSON in UTF-8 (datetimes as ISO 8601 text)."""
    try:
        return orjson.dumps(data, default=json_default)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _standard_json_bytes(data)


def json_text(data: Any) -> str:
    """:func:`json_bytes` as text, for a cell that holds JSON."""
    return json_bytes(data).decode()


def json_loads(text: str | bytes) -> Any:
    """Parse JSON exactly as :func:`json.loads` does, several times faster.

    pydantic's parser (the one every request body already goes through) keeps
    integers beyond 64 bits exact and reads ``NaN`` and ``Infinity`` as the
    standard library does; it refuses an escaped lone surrogate, which such
    text is then read by the standard library for. Every reader gets the same
    values whichever parser read them.
    """
    try:
        return from_json(text, allow_inf_nan=True)
    except ValueError:
        return json.loads(text)


def _standard_json_bytes(data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=json_default)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; as a \\u escape it is still valid JSON.
        return json.dumps(data, separators=(",", ":"), default=json_default).encode()
