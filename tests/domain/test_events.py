import os
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.factories import conversation_events
from tuneback.domain import (
    EVENT_TYPES,
    Candidate,
    Comparison,
    Feedback,
    Run,
    dump_payload,
    new_id,
    parse_payload,
)
from tuneback.errors import ValidationError


def test_the_factory_covers_every_event_type() -> None:
    assert {e.type for e in conversation_events()} == set(EVENT_TYPES)


@pytest.mark.parametrize("payload", conversation_events(), ids=lambda p: p.type)
def test_payloads_round_trip_through_json(payload: object) -> None:
    data = dump_payload(payload)  # type: ignore[arg-type]
    assert parse_payload(payload.type, payload.version, data) == payload  # type: ignore[attr-defined]


def test_unknown_type_and_bad_payload_raise_the_one_validation_error() -> None:
    with pytest.raises(ValidationError, match=r"unknown event type 'run\.exploded'"):
        parse_payload("run.exploded", 1, {})
    with pytest.raises(ValidationError, match=r"invalid feedback\.recorded payload") as info:
        parse_payload("feedback.recorded", 1, {"feedback": {"key": "thumbs", "bogus": 1}})
    locs = {tuple(d["loc"]) for d in info.value.details}
    assert ("feedback", "bogus") in locs
    with pytest.raises(ValidationError, match="status 'ok'"):
        parse_payload("run.completed", 1, {"run": {"status": "error", "error": "boom"}})


def test_timestamps_are_always_utc() -> None:
    paris = timezone(timedelta(hours=1))
    run = Run(created_at=datetime(2026, 1, 1, 12, tzinfo=paris))
    assert run.created_at == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert run.created_at.tzinfo is UTC
    naive = Run(created_at=datetime(2026, 1, 1, 12))
    assert naive.created_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_feedback_rules() -> None:
    with pytest.raises(ValueError, match="needs a run_id or a conversation_id"):
        Feedback(key="thumbs")
    with pytest.raises(ValueError, match="needs the corrected text"):
        Feedback(run_id="r", key="fix", kind="correction")
    with pytest.raises(ValueError, match="less than or equal to 1"):
        Feedback(run_id="r", key="thumbs", score=1.5)


def test_comparison_rules() -> None:
    pair = [Candidate(run_id="a"), Candidate(run_id="b")]
    assert Comparison(candidates=pair, outcome="a").winner == pair[0]
    assert Comparison(candidates=pair, outcome="tie").winner is None
    three = [*pair, Candidate(run_id="c")]
    assert Comparison(candidates=three, ranking=["c", "a", "b"]).winner == three[2]
    with pytest.raises(ValueError, match="needs an outcome"):
        Comparison(candidates=pair)
    with pytest.raises(ValueError, match="exactly two"):
        Comparison(candidates=three, outcome="a")
    with pytest.raises(ValueError, match="every candidate"):
        Comparison(candidates=three, ranking=["a", "b"])
    with pytest.raises(ValueError, match="different runs"):
        Comparison(candidates=[Candidate(run_id="a"), Candidate(run_id="a")], outcome="a")


def test_error_runs_need_their_error() -> None:
    with pytest.raises(ValueError, match="needs an error message"):
        Run(status="error")


def test_ids_made_at_once_on_many_threads_are_unique_and_ordered_per_thread() -> None:
    # new_id holds its own lock around the whole ULID, clock read included: with
    # only python-ulid's lock, a thread's ids can come out of order.
    made: dict[int, list[str]] = {n: [] for n in range(8)}

    def make(n: int) -> None:
        made[n].extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in made.values() for i in ids]
    assert len(set(every)) == len(every) == 40_000
    for ids in made.values():
        assert ids == sorted(ids)


def test_a_forked_child_never_repeats_its_parents_random_bytes() -> None:
    # The random part is read ahead; a child must not hand out what its parent will.
    new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, "\n".join(new_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(50)]
    assert len(child) == 50
    assert not {c[10:] for c in child} & {p[10:] for p in parent}
