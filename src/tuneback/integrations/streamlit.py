"""Streamlit helpers: rate an answer with ``st.feedback``, stream an answer as a run.

::

    from tuneback.integrations import streamlit as tb_st

    text, run_id = tb_st.write_stream(model_reply(messages), inputs=messages, model="m")
    tb_st.feedback(run_id, scale="faces", comment=True)

:func:`feedback` maps ``st.feedback``'s indices onto tuneback's scales (thumbs
0 = 👎 and 1 = 👍; faces and stars 0..4 = 1..5), records a rating once per change
however often the script reruns, takes it back when the user clicks it off,
and shows what was sent. ``lock=True`` makes the first rating final.

Both use a :class:`tuneback.Client` (by default one per process, made from
``TUNEBACK_URL`` and ``TUNEBACK_API_KEY``). A failure to reach tuneback shows a
quiet warning under the widget and never stops the app; the change is tried
again on the next rerun.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx
import streamlit as st

from tuneback.client import Client
from tuneback.domain import ChatMessage, new_id
from tuneback.domain.feedback import FACES
from tuneback.errors import TuneBackError

log = logging.getLogger("tuneback.client")

Scale = Literal["thumbs", "faces", "stars"]

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process's client, made on first use from ``TUNEBACK_URL`` and ``TUNEBACK_API_KEY``."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def value_of(scale: Scale, index: int) -> int | str:
    """The tuneback value for ``st.feedback``'s ``index`` on ``scale``."""
    if scale == "thumbs":
        return "up" if index == 1 else "down"
    return index + 1


def label_of(scale: Scale, index: int) -> str:
    if scale == "thumbs":
        return "👍" if index == 1 else "👎"
    if scale == "faces":
        return FACES[index]
    return "★" * (index + 1)


def feedback(
    run_id: str,
    scale: Scale = "thumbs",
    *,
    comment: bool = False,
    lock: bool = False,
    user: str | None = None,
    key: str | None = None,
    client: Client | None = None,
) -> str | None:
    """An ``st.feedback`` widget whose rating is recorded on ``run_id``.

    Returns the id of the rating that stands (None when there is none).
    ``comment=True`` adds a text box once a rating is given; ``lock=True``
    disables the widget after the first rating. ``key`` names the widget
    (by default one per run and scale).
    """
    widget = key or f"tuneback:{scale}:{run_id}"
    sent: dict[str, Any] = st.session_state.setdefault(
        f"{widget}:sent", {"index": None, "id": None, "comment": ""}
    )
    # On a rerun the widget's new value is in the session state before the widget
    # is drawn, so it is recorded first. A locked rating is final: later changes
    # are ignored and the widget is drawn disabled, but only from the run after the
    # rating (Streamlit makes a widget whose options change in the same run a new one).
    locked = lock and sent["id"] is not None
    chosen = st.session_state.get(widget, sent["index"])
    problem = None
    if chosen != sent["index"] and not locked:
        problem = _record_change(client or default_client(), run_id, scale, chosen, sent, user)
    st.feedback(scale, key=widget, disabled=locked)
    if comment and sent["id"] is not None:
        text = st.text_input("Tell us more", key=f"{widget}:comment").strip()
        if text and text != sent["comment"]:
            problem = problem or _record_comment(
                client or default_client(), run_id, text, sent, user
            )
    if problem:
        st.caption(f"⚠ not sent to tuneback: {problem}")
    elif sent["id"] is not None:
        note = f"Sent {label_of(scale, sent['index'])}"
        st.caption(note + (" with your comment" if sent["comment"] else ""))
    return sent["id"] if isinstance(sent["id"], str) else None


def _record_change(
    client: Client,
    run_id: str,
    scale: Scale,
    chosen: int | None,
    sent: dict[str, Any],
    user: str | None,
) -> str | None:
    try:
        if sent["id"] is not None:
            client.retract(sent["id"])
            sent["id"] = None
        if chosen is not None:
            sent["id"] = client.record_feedback(
                run_id,
                scale,
                value=value_of(scale, chosen),
                kind="explicit",
                user=user,
                source="end_user",
                metadata={"integration": "streamlit"},
            )
        sent["index"] = chosen
    except (TuneBackError, httpx.HTTPError) as exc:
        log.warning("tuneback: could not record a Streamlit rating", exc_info=True)
        return str(exc)
    return None


def _record_comment(
    client: Client, run_id: str, text: str, sent: dict[str, Any], user: str | None
) -> str | None:
    try:
        client.record_feedback(
            run_id,
            "comment",
            kind="comment",
            comment=text,
            user=user,
            source="end_user",
            metadata={"integration": "streamlit"},
        )
    except (TuneBackError, httpx.HTTPError) as exc:
        log.warning("tuneback: could not record a Streamlit comment", exc_info=True)
        return str(exc)
    sent["comment"] = text
    return None


def write_stream(
    stream: Iterable[str],
    *,
    inputs: str | Sequence[ChatMessage | Mapping[str, Any]] | Mapping[str, Any],
    model: str | None = None,
    user: str | None = None,
    conversation_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    client: Client | None = None,
) -> tuple[str, str]:
    """``st.write_stream`` that logs the answer as a run; returns ``(text, run_id)``.

    Latency and time to first token are measured around the stream. A stream
    that fails is logged as an error run and the error is raised as before.
    """
    tb = client or default_client()
    run_id = new_id()
    started = time.perf_counter()
    first: list[float] = []
    parts: list[str] = []

    def timed() -> Iterator[str]:
        for piece in stream:
            if piece and not first:
                first.append(time.perf_counter())
            parts.append(str(piece))
            yield piece

    def log_run(status: str, error: BaseException | None = None) -> None:
        try:
            tb.log_run(
                id=run_id,
                inputs=inputs,
                output="".join(parts) if error is None else None,
                model=model,
                user=user,
                conversation_id=conversation_id,
                status=status,
                error=None if error is None else f"{type(error).__name__}: {error}",
                latency_ms=(time.perf_counter() - started) * 1000,
                ttft_ms=(first[0] - started) * 1000 if first else None,
                params=params,
                tags=tags,
                metadata={"integration": "streamlit"},
            )
        except Exception:
            log.warning("tuneback: could not log a Streamlit answer", exc_info=True)

    try:
        st.write_stream(timed())
    except BaseException as exc:
        log_run("error", exc)
        raise
    log_run("ok")
    return "".join(parts), run_id
