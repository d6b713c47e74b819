"""Conversations, users, run trees and known values, grouped from the runs on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tuneback.domain import (
    ChatMessage,
    Conversation,
    ConversationDeleted,
    ConversationStarted,
    Feedback,
    FeedbackRecorded,
    Run,
    RunCompleted,
    normalize_score,
)
from tuneback.services.analytics import dashboard
from tuneback.storage import Store
from tuneback.storage.browse import Browse, Slice

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _run(conversation: str | None, user: str | None, model: str, days_ago: float, q: str) -> Run:
    return Run(
        project="p",
        conversation_id=conversation,
        user=user,
        model=model,
        inputs=[ChatMessage(role="user", content=q)],
        output=f"answer to {q}",
        started_at=NOW - timedelta(days=days_ago),
        created_at=NOW,
    )


def _seed(store: Store) -> dict[str, Run]:
    chat = Conversation(project="p", user="ann", title="Trip to Lisbon", started_at=NOW)
    runs = {
        "ann-1": _run(chat.id, "ann", "alpha", 1, "Where to eat?"),
        "ann-2": _run(chat.id, "ann", "beta", 0.5, "And at night?"),
        "bob-1": _run("app-conv-1", "bob", "alpha", 10, "How do I reset my password?"),
        "bob-2": _run("app-conv-1", "bob", "alpha", 9, "It did not work"),
        "cyd-1": _run(None, "cyd", "beta", 2, "One-off question"),
        "anon": _run("app-conv-2", None, "alpha", 3, "Who am I?"),
    }
    store.append_many(
        [ConversationStarted(conversation=chat), *(RunCompleted(run=r) for r in runs.values())]
    )
    ratings = [("ann-1", "thumbs", "up"), ("ann-2", "stars", 2), ("bob-1", "thumbs", "down")]
    store.append_many(
        [
            FeedbackRecorded(
                feedback=Feedback(
                    project="p",
                    run_id=runs[name].id,
                    key=key,
                    value=value,
                    score=normalize_score(key, value),
                    user="rater",
                )
            )
            for name, key, value in ratings
        ]
    )
    return runs


def test_conversations_group_runs_with_titles_feedback_and_times(store: Store) -> None:
    runs = _seed(store)
    rows, total = Browse(store).conversations(Slice(project="p"))
    ann = runs["ann-1"].conversation_id
    assert total == 3
    assert [
        (r["id"], r["title"], r["user"], r["runs"], r["models"], r["feedback"], r["mean_score"])
        for r in rows
    ] == [
        (ann, "Trip to Lisbon", "ann", 2, 2, 2, (1.0 + 0.25) / 2),
        ("app-conv-2", "Who am I?", None, 1, 1, 0, None),
        ("app-conv-1", "How do I reset my password?", "bob", 2, 1, 1, 0.0),
    ]
    assert {type(rows[0][k]) for k in ("runs", "errors", "feedback", "models")} == {int}
    assert type(rows[0]["mean_score"]) is float
    assert rows[0]["first_at"] == runs["ann-1"].happened_at
    assert rows[0]["last_at"] == runs["ann-2"].happened_at


def test_conversation_filters_count_what_the_dashboard_counts(store: Store) -> None:
    _seed(store)
    browse = Browse(store)
    week = dashboard(store, project="p", period="7d", now=NOW)["summary"]
    since = NOW - timedelta(days=7)
    _, conversations = browse.conversations(Slice(project="p", since=since, until=NOW))
    _, users = browse.users(Slice(project="p", since=since, until=NOW))
    assert (conversations, users) == (week["conversations"], week["users"]) == (2, 2)
    found, _ = browse.conversations(Slice(project="p", text="PASSWORD"))
    assert [r["id"] for r in found] == ["app-conv-1"]
    found, _ = browse.conversations(Slice(project="p", user="bob", model="alpha"))
    assert [(r["id"], r["runs"]) for r in found] == [("app-conv-1", 2)]
    assert browse.conversations(Slice(project="other")) == ([], 0)


def test_users_are_listed_latest_first_with_their_numbers(store: Store) -> None:
    _seed(store)
    browse = Browse(store)
    rows, total = browse.users(Slice(project="p"))
    assert total == 3
    assert [(r["name"], r["runs"], r["conversations"], r["feedback"]) for r in rows] == [
        ("ann", 2, 1, 2),
        ("cyd", 1, 0, 0),
        ("bob", 2, 1, 1),
    ]
    named, _ = browse.users(Slice(project="p", text="B"))
    assert [r["name"] for r in named] == ["bob"]


def test_known_values_are_the_distinct_models_and_users_most_used_first(store: Store) -> None:
    _seed(store)
    browse = Browse(store)
    assert browse.known_values("p", "model") == ["alpha", "beta"]
    assert browse.known_values("p", "user") == ["ann", "bob", "cyd"]
    assert browse.known_values("other", "user") == []


def test_a_run_tree_is_the_whole_chain_in_order(store: Store) -> None:
    start = NOW - timedelta(hours=1)

    def step(name: str, parent: Run | None, seconds: int) -> Run:
        return Run(
            project="p",
            run_type="chain" if parent is None else "llm",
            name=name,
            parent_run_id=parent.id if parent else None,
            inputs={"x": name},
            started_at=start + timedelta(seconds=seconds),
        )

    root = step("root", None, 0)
    retrieve = step("retrieve", root, 1)
    answer = step("answer", root, 2)
    tool = step("tool", answer, 3)
    # Logged out of order, children before their parents, as tracers do.
    store.append_many([RunCompleted(run=r) for r in (tool, answer, retrieve, root)])
    expected = [("root", 0), ("retrieve", 1), ("answer", 1), ("tool", 2)]
    browse = Browse(store)
    for run in (root, retrieve, answer, tool):
        assert [(r.name, depth) for r, depth in browse.run_tree(run)] == expected
    lone = _run(None, None, "m", 0, "alone")
    store.append(RunCompleted(run=lone))
    assert [r.id for r, _ in browse.run_tree(lone)] == [lone.id]


def test_a_conversation_deleted_from_the_chat_stays_listed_and_says_so(store: Store) -> None:
    runs = _seed(store)
    chat_id = runs["ann-1"].conversation_id
    assert chat_id is not None
    gone = NOW + timedelta(hours=1)
    store.append(ConversationDeleted(project="p", conversation_id=chat_id, deleted_at=gone))
    rows, total = Browse(store).conversations(Slice(project="p"))
    assert total == 3
    assert [(r["id"], r["deleted_at"]) for r in rows] == [
        (chat_id, gone),
        ("app-conv-2", None),
        ("app-conv-1", None),
    ]
