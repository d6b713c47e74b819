"""encode_payload stores only what reads back equal, and says which field is at fault."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.factories import conversation_events
from tuneback.domain import (
    PAYLOAD_TYPES,
    AnnotationTask,
    AnnotationTaskCreated,
    AuditRecorded,
    Candidate,
    CategoricalConfig,
    Category,
    ChatMessage,
    Comparison,
    ComparisonRecorded,
    ContinuousConfig,
    Conversation,
    ConversationDeleted,
    ConversationEnded,
    ConversationRenamed,
    ConversationStarted,
    Dataset,
    DatasetCreated,
    DatasetItem,
    DatasetItemAdded,
    DatasetItemRemoved,
    EventForgotten,
    EventPayload,
    Feedback,
    FeedbackConfigSet,
    FeedbackRecorded,
    FeedbackRetracted,
    FreeformConfig,
    Message,
    MessageAdded,
    ProjectConfigured,
    ProjectSettings,
    QueueRule,
    ReviewQueue,
    ReviewQueueCreated,
    Run,
    RunCompleted,
    RunFailed,
    encode_payload,
    parse_payload,
    validate,
)
from tuneback.domain.run import TOKEN_COUNT_MAX
from tuneback.errors import ValidationError

EVENTS = {type(payload): payload for payload in conversation_events()}


def _read_back(payload: EventPayload, text: str) -> EventPayload:
    return parse_payload(payload.type, payload.version, json.loads(text))


def _feedback_with(**changes: Any) -> FeedbackRecorded:
    # model_copy skips validation: the way a payload with bad values reaches the store.
    recorded = EVENTS[FeedbackRecorded]
    assert isinstance(recorded, FeedbackRecorded)
    return FeedbackRecorded(feedback=recorded.feedback.model_copy(update=changes))


def _refusal(payload: EventPayload) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        encode_payload(payload)
    return info.value


# -- examples ---------------------------------------------------------------------


@pytest.mark.parametrize("payload", list(EVENTS.values()), ids=lambda p: p.type)
def test_every_event_type_encodes_to_what_reads_back(payload: EventPayload) -> None:
    text = encode_payload(payload)
    assert text == payload.model_dump_json(by_alias=True)
    assert _read_back(payload, text) == payload


@pytest.mark.parametrize(
    ("number", "shown"), [(math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")]
)
def test_non_finite_numbers_in_metadata_are_refused(number: float, shown: str) -> None:
    refusal = _refusal(_feedback_with(metadata={"x": number}))
    assert refusal.message == (
        "invalid feedback.recorded payload: feedback.metadata.x: "
        f"numbers must be finite (got {shown})"
    )
    assert refusal.details == [
        {
            "loc": ["feedback", "metadata", "x"],
            "msg": f"numbers must be finite (got {shown})",
            "type": "finite_number",
        }
    ]
    assert refusal.status_code == 422


def test_the_path_reaches_into_nested_lists_and_dicts() -> None:
    run = Run(params={"sampling": [{"temperature": 0.7}, {"temperature": math.inf}]})
    refusal = _refusal(RunCompleted(run=run))
    assert refusal.message == (
        "invalid run.completed payload: run.params.sampling.1.temperature: "
        "numbers must be finite (got inf)"
    )


def test_a_non_finite_bound_that_slipped_past_validation_is_refused() -> None:
    # The bug this guards against: max 1e999 was stored as null, and then no
    # event of the database could be read any more.
    config = ContinuousConfig.model_construct(min=0.0, max=float("1e999"))
    payload = FeedbackConfigSet.model_construct(project_name="demo", key="len", config=config)
    assert _refusal(payload).message == (
        "invalid feedback.config_set payload: config.max: numbers must be finite (got inf)"
    )


def test_a_latency_that_would_be_stored_as_null_is_refused() -> None:
    run = Run().model_copy(update={"latency_ms": math.inf})
    assert _refusal(RunCompleted(run=run)).message == (
        "invalid run.completed payload: run.latency_ms: numbers must be finite (got inf)"
    )


def test_nul_characters_are_refused_in_text_and_in_keys() -> None:
    refusal = _refusal(_feedback_with(comment="fine\x00print"))
    assert refusal.message == (
        "invalid feedback.recorded payload: feedback.comment: "
        "text must not contain NUL characters (\\x00)"
    )
    assert refusal.details[0]["type"] == "string_nul"
    refusal = _refusal(_feedback_with(metadata={"a\x00b": 1}))
    assert refusal.message == (
        "invalid feedback.recorded payload: feedback.metadata.'a\\x00b': "
        "keys must not contain NUL characters (\\x00)"
    )


def test_an_escaped_backslash_before_u0000_is_plain_text() -> None:
    payload = _feedback_with(comment="\\u0000 is how JSON writes NUL")
    assert _read_back(payload, encode_payload(payload)) == payload


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "\ud83d\ude00"])
def test_lone_surrogates_are_refused(text: str) -> None:
    refusal = _refusal(_feedback_with(comment=text))
    assert refusal.message.startswith(
        "invalid feedback.recorded payload: feedback.comment: text must be valid Unicode "
        "(lone surrogate '\\ud"
    )
    assert refusal.details[0]["type"] == "string_surrogate"
    # The message itself stays encodable, so the API can send it.
    refusal.message.encode("utf-8")


def test_a_lone_surrogate_in_a_key_is_refused_not_replaced() -> None:
    refusal = _refusal(_feedback_with(metadata={"nested": {"k\ud800": True}}))
    assert refusal.message == (
        "invalid feedback.recorded payload: feedback.metadata.nested.'k\\ud800': "
        "keys must be valid Unicode (lone surrogate '\\ud800' at position 1)"
    )
    json.dumps(refusal.details, ensure_ascii=False).encode("utf-8")


def test_astral_characters_are_fine() -> None:
    payload = _feedback_with(comment="😀 \U0010ffff", metadata={"🙂": "ok"})
    assert _read_back(payload, encode_payload(payload)) == payload


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((1, 2), "(1, 2) would be stored as [1, 2]"),
        ({1: "a"}, "{1: 'a'} would be stored as {'1': 'a'}"),
        (b"raw", "b'raw' would be stored as 'raw'"),
        (datetime(2026, 1, 1, tzinfo=UTC), "would be stored as '2026-01-01T00:00:00Z'"),
    ],
)
def test_values_that_would_change_on_the_way_are_refused(value: Any, message: str) -> None:
    refusal = _refusal(_feedback_with(metadata={"x": value}))
    assert refusal.message.startswith("invalid feedback.recorded payload: feedback.metadata.x: ")
    assert refusal.message.endswith(message)
    assert refusal.details[0]["type"] == "round_trip"


def test_values_json_cannot_hold_are_refused_where_they_are() -> None:
    refusal = _refusal(_feedback_with(metadata={"x": [1, object()]}))
    assert refusal.message == (
        "invalid feedback.recorded payload: feedback.metadata.x.1: "
        "values of type object cannot be stored as JSON"
    )


def test_a_payload_that_would_not_read_back_is_refused_with_the_readers_error() -> None:
    config = ContinuousConfig.model_construct(min=5.0, max=1.0)
    payload = FeedbackConfigSet.model_construct(project_name="demo", key="len", config=config)
    refusal = _refusal(payload)
    assert refusal.message == (
        "invalid feedback.config_set payload: config.continuous: "
        "Value error, a continuous feedback config needs max > min (once stored and read back)"
    )


# -- models refuse non-finite numbers as they are built ---------------------------------


@pytest.mark.parametrize(
    ("model", "data", "where"),
    [
        (ContinuousConfig, {"min": 0, "max": math.inf}, "max"),
        (ContinuousConfig, {"min": -math.inf, "max": 1}, "min"),
        (Category, {"label": "ok", "score": math.nan}, "score"),
        (Run, {"latency_ms": math.inf}, "latency_ms"),
        (Run, {"ttft_ms": math.nan}, "ttft_ms"),
        (Feedback, {"run_id": "r", "key": "k", "score": math.nan}, "score"),
        (Feedback, {"run_id": "r", "key": "k", "value": math.inf}, "value"),
        (QueueRule, {"key": "k", "min_score": math.nan}, "min_score"),
        (QueueRule, {"key": "k", "max_score": math.inf}, "max_score"),
    ],
)
def test_domain_models_refuse_non_finite_numbers(
    model: type[BaseModel], data: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValidationError, match="finite") as info:
        validate(model, data)
    assert info.value.details[0]["loc"] == [where]


def test_json_overflow_is_refused_when_a_config_is_parsed() -> None:
    # What the API receives for "max": 1e999 once json.loads has read it.
    with pytest.raises(ValidationError, match=r"config\.continuous\.max: Input should be a finite"):
        parse_payload(
            "feedback.config_set",
            1,
            json.loads(
                '{"project": "demo", "key": "len", "config": {"type": "continuous", '
                '"min": 0, "max": 1e999}}'
            ),
        )


# -- every payload type, generated ------------------------------------------------------

IDS = st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True)
NAMES = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
TOKEN_COUNTS = st.integers(min_value=0, max_value=TOKEN_COUNT_MAX)
KEYS = IDS
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5))]),
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SCORES = st.none() | st.floats(min_value=0, max_value=1)
ROLES = st.sampled_from(["system", "user", "assistant", "tool"])

_GOOD_CHARACTER = st.characters(exclude_characters="\x00")
_CLEAN_TEXT = st.text(_GOOD_CHARACTER, max_size=12)
_BAD_CHARACTER = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])
_ANY_TEXT = st.one_of(
    _CLEAN_TEXT,
    st.tuples(_CLEAN_TEXT, _BAD_CHARACTER, _CLEAN_TEXT).map("".join),
    st.text(st.characters(exclude_categories=()), max_size=12),
)
# Constrained strings (names, labels) refuse lone surrogates as pydantic validates
# them, so only NUL can reach the store through those.
_ANY_LABEL_TEXT = _CLEAN_TEXT | st.tuples(_CLEAN_TEXT, st.just("\x00"), _CLEAN_TEXT).map("".join)


def payload_strategies(
    text: st.SearchStrategy[str],
    label_text: st.SearchStrategy[str],
    numbers: st.SearchStrategy[float],
) -> dict[type[EventPayload], st.SearchStrategy[EventPayload]]:
    """A strategy for each payload type, with its free text and free numbers drawn from these."""
    optional_text = st.none() | text
    some_text = st.tuples(_GOOD_CHARACTER, text).map("".join)
    labels = st.tuples(_GOOD_CHARACTER, label_text).map("".join)
    jsonish = st.recursive(
        st.none() | st.booleans() | st.integers() | numbers | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )
    metadata = st.dictionaries(text, jsonish, max_size=3)
    chat = st.builds(ChatMessage, role=ROLES, content=text)

    @st.composite
    def runs(draw: st.DrawFn, *, ok: bool) -> Run:
        status = "ok" if ok else draw(st.sampled_from(["error", "cancelled"]))
        return Run(
            id=draw(IDS),
            project=draw(NAMES),
            run_type=draw(st.sampled_from(["llm", "chain", "tool", "retriever"])),
            name=draw(optional_text),
            parent_run_id=draw(st.none() | IDS),
            conversation_id=draw(st.none() | IDS),
            message_id=draw(st.none() | IDS),
            user=draw(optional_text),
            model=draw(optional_text),
            params=draw(metadata),
            inputs=draw(st.lists(chat, max_size=3) | metadata),
            output=draw(optional_text),
            status=status,
            error=draw(some_text if status == "error" else optional_text),
            latency_ms=draw(st.none() | st.floats(min_value=0, allow_infinity=False)),
            ttft_ms=draw(st.none() | st.floats(min_value=0, allow_infinity=False)),
            prompt_tokens=draw(st.none() | TOKEN_COUNTS),
            completion_tokens=draw(st.none() | TOKEN_COUNTS),
            tags=draw(st.lists(text, max_size=3)),
            metadata=draw(metadata),
            started_at=draw(st.none() | TIMES),
            created_at=draw(TIMES),
        )

    @st.composite
    def feedbacks(draw: st.DrawFn) -> Feedback:
        run_id = draw(st.none() | IDS)
        kind = draw(st.sampled_from(["explicit", "implicit", "comment", "correction"]))
        return Feedback(
            id=draw(IDS),
            project=draw(NAMES),
            run_id=run_id,
            conversation_id=draw(IDS if run_id is None else st.none() | IDS),
            key=draw(KEYS),
            kind=kind,
            score=draw(SCORES),
            value=draw(st.none() | st.booleans() | st.integers() | FINITE | text),
            comment=draw(some_text if kind == "comment" else optional_text),
            correction=draw(some_text if kind == "correction" else optional_text),
            user=draw(optional_text),
            source=draw(st.sampled_from(["end_user", "annotator", "api"])),
            metadata=draw(metadata),
            created_at=draw(TIMES),
        )

    @st.composite
    def comparisons(draw: st.DrawFn) -> Comparison:
        run_ids = draw(st.lists(IDS, min_size=2, max_size=4, unique=True))
        pair = len(run_ids) == 2
        outcome = draw(st.sampled_from(["a", "b", "tie", "both_bad"])) if pair else None
        ranking = draw(st.permutations(run_ids))
        return Comparison(
            id=draw(IDS),
            project=draw(NAMES),
            prompt=draw(st.lists(chat, max_size=3)),
            candidates=[Candidate(run_id=run_id, model=draw(optional_text)) for run_id in run_ids],
            outcome=outcome,
            ranking=ranking if outcome is None or draw(st.booleans()) else None,
            user=draw(optional_text),
            comment=draw(optional_text),
            metadata=draw(metadata),
            created_at=draw(TIMES),
        )

    @st.composite
    def queue_rules(draw: st.DrawFn) -> QueueRule:
        has = draw(st.sampled_from([None, "feedback", "comment", "correction", "none"]))
        key = None if has == "none" else draw(st.none() | KEYS)
        low, high = (None, None) if key is None else (draw(SCORES), draw(SCORES))
        if low is not None and high is not None and low > high:
            low, high = high, low
        return QueueRule(
            model=draw(st.none() | labels),
            tag=draw(st.none() | labels),
            status=draw(st.sampled_from([None, "ok", "error", "cancelled"])),
            key=key,
            min_score=low,
            max_score=high,
            has=has,
            lacks=None if has == "none" else draw(st.sampled_from([None, "comment", "correction"])),
        )

    configs = st.one_of(
        st.lists(FINITE, min_size=2, max_size=2, unique=True)
        .map(sorted)
        .map(lambda bounds: ContinuousConfig(min=bounds[0], max=bounds[1])),
        st.builds(
            CategoricalConfig,
            categories=st.lists(
                st.builds(Category, label=labels, score=SCORES), min_size=1, max_size=4
            ),
        ),
        st.just(FreeformConfig()),
    )
    prompts = st.builds(
        lambda before, last: [*before, last],
        st.lists(chat, max_size=2),
        st.builds(ChatMessage, role=st.just("user"), content=text),
    )
    return {
        ConversationStarted: st.builds(
            ConversationStarted,
            conversation=st.builds(
                Conversation,
                id=IDS,
                project=NAMES,
                user=optional_text,
                model=optional_text,
                system_prompt=optional_text,
                title=optional_text,
                tags=st.lists(text, max_size=3),
                metadata=metadata,
                started_at=TIMES,
                ended_at=st.none() | TIMES,
                deleted_at=st.none() | TIMES,
            ),
        ),
        ConversationEnded: st.builds(
            ConversationEnded, project=NAMES, conversation_id=IDS, ended_at=TIMES
        ),
        ConversationRenamed: st.builds(
            ConversationRenamed,
            project=NAMES,
            conversation_id=IDS,
            title=labels.filter(lambda title: len(title) <= 200),
            renamed_at=TIMES,
        ),
        ConversationDeleted: st.builds(
            ConversationDeleted, project=NAMES, conversation_id=IDS, deleted_at=TIMES
        ),
        MessageAdded: st.builds(
            MessageAdded,
            message=st.builds(
                Message,
                id=IDS,
                conversation_id=IDS,
                project=NAMES,
                parent_id=st.none() | IDS,
                role=ROLES,
                content=text,
                run_id=st.none() | IDS,
                created_at=TIMES,
            ),
        ),
        RunCompleted: st.builds(RunCompleted, run=runs(ok=True)),
        RunFailed: st.builds(RunFailed, run=runs(ok=False)),
        FeedbackRecorded: st.builds(FeedbackRecorded, feedback=feedbacks()),
        FeedbackRetracted: st.builds(
            FeedbackRetracted,
            project=NAMES,
            feedback_id=IDS,
            user=optional_text,
            retracted_at=TIMES,
        ),
        ComparisonRecorded: st.builds(ComparisonRecorded, comparison=comparisons()),
        DatasetCreated: st.builds(
            DatasetCreated,
            dataset=st.builds(
                Dataset,
                id=IDS,
                project=NAMES,
                name=labels,
                description=optional_text,
                created_at=TIMES,
            ),
        ),
        DatasetItemAdded: st.builds(
            DatasetItemAdded,
            item=st.builds(
                DatasetItem,
                id=IDS,
                dataset_id=IDS,
                project=NAMES,
                inputs=st.lists(chat, min_size=1, max_size=3),
                output=text,
                source=st.sampled_from(["run", "correction", "comparison", "manual"]),
                source_run_id=st.none() | IDS,
                metadata=metadata,
                created_at=TIMES,
            ),
        ),
        DatasetItemRemoved: st.builds(
            DatasetItemRemoved, project=NAMES, dataset_id=IDS, item_id=IDS
        ),
        EventForgotten: st.builds(
            EventForgotten,
            project=NAMES,
            was=st.sampled_from(["message.added", "run.completed", "dataset.item_added"]),
            forgotten_at=TIMES,
            dataset_id=st.none() | IDS,
            task_id=st.none() | IDS,
        ),
        FeedbackConfigSet: st.builds(FeedbackConfigSet, project=NAMES, key=KEYS, config=configs),
        ProjectConfigured: st.builds(
            ProjectConfigured,
            project=NAMES,
            settings=st.builds(
                ProjectSettings,
                feedback=st.lists(
                    st.sampled_from(["thumbs", "faces", "stars", "comment", "correction"])
                ),
                negative_reasons=st.lists(text, max_size=3),
                positive_reasons=st.lists(text, max_size=3),
                changeable=st.booleans(),
                latest_only=st.booleans(),
            ),
        ),
        ReviewQueueCreated: st.builds(
            ReviewQueueCreated,
            queue=st.builds(
                ReviewQueue,
                id=IDS,
                project=NAMES,
                name=labels,
                description=st.none() | labels,
                rule=queue_rules(),
                keys=st.lists(KEYS, min_size=1, max_size=4, unique=True),
                reviewers_per_item=st.integers(1, 20),
                lease_seconds=st.integers(10, 86_400),
                created_by=optional_text,
                created_at=TIMES,
            ),
        ),
        AnnotationTaskCreated: st.builds(
            AnnotationTaskCreated,
            task=st.builds(
                AnnotationTask,
                id=IDS,
                project=NAMES,
                name=labels,
                models=st.lists(text, min_size=1, max_size=3),
                prompts=st.lists(prompts, min_size=1, max_size=3),
                queue_id=IDS,
                created_by=optional_text,
                created_at=TIMES,
            ),
        ),
        AuditRecorded: st.builds(
            AuditRecorded,
            action=st.sampled_from(
                ["key.created", "key.revoked", "export", "login", "login.failed", "user.forgotten"]
            ),
            actor=st.none() | label_text,
            project=st.none() | NAMES,
            target=st.none() | label_text,
            details=metadata,
        ),
    }


# Half the payloads are clean throughout and must be stored; the other half may hold
# anything, including inf, nan, NUL and lone surrogates, in any string or free number.
_CLEAN = payload_strategies(_CLEAN_TEXT, _CLEAN_TEXT, FINITE)
_ANYTHING = payload_strategies(_ANY_TEXT, _ANY_LABEL_TEXT, st.floats())
PAYLOADS = {cls: _CLEAN[cls] | _ANYTHING[cls] for cls in _CLEAN}


def _unstorable(value: Any) -> bool:
    """The oracle: a non-finite number, or text with NUL or a surrogate, anywhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, BaseModel):
        return any(_unstorable(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def test_every_payload_type_has_a_strategy() -> None:
    assert set(PAYLOADS) == set(PAYLOAD_TYPES.values())


@pytest.mark.parametrize("payload_type", list(PAYLOADS), ids=lambda cls: cls.type)
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_what_is_stored_reads_back_equal_or_is_refused(
    payload_type: type[EventPayload], data: st.DataObject
) -> None:
    payload = data.draw(PAYLOADS[payload_type])
    if _unstorable(payload):
        event("refused")
        with pytest.raises(ValidationError) as info:
            encode_payload(payload)
        assert info.value.details[0]["loc"], info.value.message
        info.value.message.encode("utf-8")
    else:
        event("stored")
        assert _read_back(payload, encode_payload(payload)) == payload
