"""JSON at orjson's speed, with the standard library for what orjson refuses.

Every JSON column a write fills (a run's inputs, params and metadata, a
feedback's value) and every exported row is encoded here. orjson is several
times faster than :mod:`json`, which matters on the write path and at a million
exported rows. It refuses a few things data can hold: integers beyond 64 bits
(run metadata, feedback values), dict keys that are not strings, and text with
a lone surrogate. Those are encoded by the standard library instead, with the
same compact separators, so the result is valid JSON either way and the common
value pays for no check of its own.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import orjson

_LONG_NUMBER = re.compile(r"[0-9]{19}")
_LONG_NUMBER_BYTES = re.compile(rb"[0-9]{19}")
"""Digits enough to exceed 64 bits: orjson would read such an integer as a float."""


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
    """Parse JSON exactly as :func:`json.loads` does, at orjson's speed where it can.

    orjson refuses some of what the standard library reads (escaped lone
    surrogates, ``NaN``) and reads integers beyond 64 bits as floats. Such text
    (or any with 19 digits in a row, found in one scan) is read by the standard
    library, so every reader gets the same values whichever parser read them.
    """
    if isinstance(text, str):
        long = _LONG_NUMBER.search(text) is not None
    else:
        long = _LONG_NUMBER_BYTES.search(text) is not None
    if not long:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _standard_json_bytes(data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=json_default)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; as a \\u escape it is still valid JSON.
        return json.dumps(data, separators=(",", ":"), default=json_default).encode()
