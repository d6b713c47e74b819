"""A seeded project: runs across models, users, days, prompts and tags, rated in every way.

Returns the domain objects written, so tests can compute what the aggregates
should be on their own, in plain Python.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tuneback.domain import (
    ChatMessage,
    Conversation,
    ConversationStarted,
    EventPayload,
    Feedback,
    FeedbackRecorded,
    Run,
    RunCompleted,
    RunFailed,
    normalize_score,
)
from tuneback.storage import Store

START = datetime(2026, 3, 2, tzinfo=UTC)
MODELS = ("alpha", "beta", "gamma")
USERS = ("ann", "bob", "cyd", "dee")
PROMPTS = (None, "Be brief.", "Be thorough.")
FACES = ("😞", "🙁", "😐", "🙂", "😀")


@dataclass
class Seeded:
    runs: list[Run] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    """Every rating in the order given; later ones by the same user supersede."""
    conversations: dict[str, Conversation] = field(default_factory=dict)

    def current_feedback(self) -> list[Feedback]:
        latest: dict[tuple[str | None, str, str], Feedback] = {}
        for fb in self.feedback:
            latest[(fb.run_id, fb.key, fb.user or "")] = fb
        return list(latest.values())


def seed(store: Store, runs: int = 600, project: str = "seeded") -> Seeded:
    rng = random.Random(7)
    seeded = Seeded()
    events: list[EventPayload] = []
    conversations = []
    for n in range(40):
        conv = Conversation(
            project=project,
            user=USERS[n % len(USERS)],
            system_prompt=PROMPTS[n % len(PROMPTS)],
            started_at=START + timedelta(hours=n),
        )
        conversations.append(conv)
        seeded.conversations[conv.id] = conv
        events.append(ConversationStarted(conversation=conv))
    for n in range(runs):
        conv = conversations[n % len(conversations)]
        failed = rng.random() < 0.05
        run = Run(
            project=project,
            conversation_id=conv.id,
            user=conv.user,
            model=MODELS[rng.randrange(3)],
            inputs=[ChatMessage(role="user", content=f"Question number {n}?")],
            output=f"Answer number {n}.",
            status="error" if failed else "ok",
            error="boom" if failed else None,
            latency_ms=round(rng.uniform(50, 3000), 1),
            ttft_ms=round(rng.uniform(5, 400), 1),
            prompt_tokens=rng.randrange(5, 200),
            completion_tokens=rng.randrange(1, 300),
            tags=rng.sample(["math", "code", "chat"], rng.randrange(0, 3)),
            created_at=START + timedelta(minutes=7 * n),
        )
        seeded.runs.append(run)
        events.append(RunCompleted(run=run) if not failed else RunFailed(run=run))
        for user in rng.sample(USERS, rng.randrange(0, 3)):
            for key, value in (
                ("thumbs", rng.choice(["up", "down"])),
                ("faces", rng.choice(FACES)),
                ("stars", rng.randrange(1, 6)),
            ):
                if rng.random() < 0.5:
                    continue
                for _ in range(1 + (rng.random() < 0.2)):  # sometimes rated twice
                    fb = Feedback(
                        project=project,
                        run_id=run.id,
                        conversation_id=conv.id,
                        key=key,
                        value=value,
                        score=normalize_score(key, value),
                        user=user,
                        created_at=run.created_at + timedelta(seconds=30),
                    )
                    seeded.feedback.append(fb)
                    events.append(FeedbackRecorded(feedback=fb))
                    value = rng.choice(["up", "down"]) if key == "thumbs" else value
    for start in range(0, len(events), 500):
        store.append_many(events[start : start + 500])
    return seeded
