"""A store seeded with one example of every case the export rules decide on.

Ids are fixed so tests can assert exact rows. Everything is in project ``demo``
except one run in ``other``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from tuneback.domain import (
    Candidate,
    ChatMessage,
    Comparison,
    ComparisonRecorded,
    Conversation,
    ConversationStarted,
    Dataset,
    DatasetCreated,
    DatasetItem,
    DatasetItemAdded,
    EventPayload,
    Feedback,
    FeedbackRecorded,
    FeedbackRetracted,
    Message,
    MessageAdded,
    Run,
    RunCompleted,
    RunFailed,
)
from tuneback.storage import Store
from tuneback.storage import tables as t

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SYSTEM = {"role": "system", "content": "Be brief."}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def chat(*messages: dict[str, str]) -> list[ChatMessage]:
    return [ChatMessage.model_validate(m) for m in messages]


class Seeder:
    def __init__(self) -> None:
        self.events: list[EventPayload] = []
        self.minute = 0

    def at(self) -> datetime:
        self.minute += 1
        return T0 + timedelta(minutes=self.minute)

    def run(self, run_id: str, prompt: list[dict[str, str]], output: str, **extra: Any) -> str:
        fields: dict[str, Any] = {"project": "demo", "model": "echo", "user": "ann"}
        fields.update(extra)
        run = Run(id=run_id, inputs=chat(*prompt), output=output, created_at=self.at(), **fields)
        self.events.append(RunCompleted(run=run) if run.status == "ok" else RunFailed(run=run))
        return run_id

    def rate(self, run_id: str, key: str, value: Any, score: float | None, **extra: Any) -> str:
        feedback = Feedback(
            id=f"fb-{len(self.events)}",
            project=extra.pop("project", "demo"),
            run_id=run_id,
            key=key,
            value=value,
            score=score,
            user=extra.pop("user", "ann"),
            created_at=self.at(),
            **extra,
        )
        self.events.append(FeedbackRecorded(feedback=feedback))
        return feedback.id

    def correct(self, run_id: str, text: str) -> None:
        self.events.append(
            FeedbackRecorded(
                feedback=Feedback(
                    id=f"fb-{len(self.events)}",
                    project="demo",
                    run_id=run_id,
                    key="correction",
                    kind="correction",
                    correction=text,
                    user="reviewer",
                    source="annotator",
                    created_at=self.at(),
                )
            )
        )

    def compare(self, comparison_id: str, run_ids: list[str], **judged: Any) -> None:
        comparison = Comparison(
            id=comparison_id,
            project="demo",
            candidates=[Candidate(run_id=r) for r in run_ids],
            user="ann",
            created_at=self.at(),
            **judged,
        )
        self.events.append(ComparisonRecorded(comparison=comparison))


def seed(store: Store) -> None:
    s = Seeder()
    # Three answers to one question in a conversation (regenerated twice).
    question = [SYSTEM, user("What is 1 + 1?")]
    conversation = Conversation(id="conv-1", project="demo", user="ann", started_at=s.at())
    s.events.append(ConversationStarted(conversation=conversation))
    asked = Message(
        id="msg-q", conversation_id="conv-1", project="demo", role="user", content="What is 1 + 1?"
    )
    s.events.append(MessageAdded(message=asked))
    for run_id, output in (("run-a1", "2"), ("run-a2", "3"), ("run-a3", "two")):
        s.run(run_id, question, output, conversation_id="conv-1")
        answer = Message(
            id=f"msg-{run_id}",
            conversation_id="conv-1",
            project="demo",
            parent_id="msg-q",
            role="assistant",
            content=output,
            run_id=run_id,
        )
        s.events.append(MessageAdded(message=answer))
    s.rate("run-a1", "thumbs", "down", 0.0)  # superseded by the next rating
    s.rate("run-a1", "thumbs", "up", 1.0)
    s.rate("run-a2", "thumbs", "down", 0.0, comment="wrong")
    s.rate("run-a3", "faces", "🙂", 0.75)

    # Two SDK runs with identical inputs and no conversation.
    capital = [user("Capital of France?")]
    s.run("run-b1", capital, "Paris")
    s.run("run-b2", capital, "Lyon")
    s.rate("run-b1", "stars", 5, 1.0)
    s.rate("run-b2", "stars", 2, 0.25)

    # A corrected answer.
    s.run("run-c1", [user("Say hi")], "hello")
    s.rate("run-c1", "thumbs", "down", 0.0)
    s.correct("run-c1", "Hi!")

    # Comparisons: a winner, a tie, a ranking of three, and one with a failed run.
    story = [user("Tell a story")]
    s.run("run-d1", story, "Once upon a time.")
    s.run("run-d2", story, "No.")
    s.compare("cmp-1", ["run-d1", "run-d2"], outcome="a")
    s.compare("cmp-2", ["run-d1", "run-d2"], outcome="tie")
    rank = [user("Rank me")]
    for run_id, output in (("run-e1", "best"), ("run-e2", "middle"), ("run-e3", "worst")):
        s.run(run_id, rank, output)
    s.compare("cmp-3", ["run-e3", "run-e1", "run-e2"], ranking=["run-e1", "run-e2", "run-e3"])
    s.run("run-f1", rank, "", status="error", error="boom")
    s.compare("cmp-4", ["run-e1", "run-f1"], outcome="b")

    # Runs the rules leave out: a failed run, a chain step, a neutral and an unrated answer.
    s.run("run-g1", [user("Fail")], "", status="error", error="timeout")
    s.rate("run-g1", "thumbs", "down", 0.0)
    s.events.append(
        RunCompleted(
            run=Run(
                id="run-g2",
                project="demo",
                run_type="chain",
                inputs={"query": "x"},
                output="y",
                created_at=s.at(),
            )
        )
    )
    s.rate("run-g2", "thumbs", "up", 1.0)
    s.run("run-g3", [user("Meh?")], "meh")
    s.rate("run-g3", "faces", "😐", 0.5)
    s.run("run-g4", [user("Unrated")], "nothing", model="other-model")
    retracted = s.rate("run-g4", "thumbs", "up", 1.0)
    s.events.append(FeedbackRetracted(project="demo", feedback_id=retracted, retracted_at=s.at()))

    # A curated dataset built from the correction, and a run in another project.
    s.events.append(DatasetCreated(dataset=Dataset(id="ds-1", project="demo", name="greetings")))
    s.events.append(
        DatasetItemAdded(
            item=DatasetItem(
                id="item-1",
                dataset_id="ds-1",
                project="demo",
                inputs=chat(user("Say hi")),
                output="Hi!",
                source="correction",
                source_run_id="run-c1",
            )
        )
    )
    s.run("run-x1", [user("Elsewhere")], "there", project="other")
    s.rate("run-x1", "thumbs", "up", 1.0, project="other")
    store.append_many(s.events)


def add_runs(store: Store, start: int, count: int) -> None:
    """Pairs of answers to one prompt, one rated up and one down: KTO and DPO rows for all."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs, feedback = [], []
    for i in range(start, start + count):
        created = t0 + timedelta(seconds=i)
        runs.append(
            {
                "id": f"run-{i:08d}",
                "project": "mem",
                "run_type": "llm",
                "params": {},
                "inputs": [{"role": "user", "content": f"question {i // 2} " + "x" * 200}],
                "output": f"answer {i} " + "y" * 200,
                "status": "ok",
                "tags": [],
                "metadata": {},
                "created_at": created,
            }
        )
        feedback.append(
            {
                "id": f"fb-{i:08d}",
                "project": "mem",
                "run_id": f"run-{i:08d}",
                "key": "thumbs",
                "kind": "explicit",
                "score": float(i % 2),
                "value": i % 2,
                "source": "api",
                "metadata": {},
                "created_at": created,
                "current": True,
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(t.runs), runs)
        conn.execute(insert(t.feedback), feedback)
