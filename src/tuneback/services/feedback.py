"""Recording feedback: the rules every way in (chat page, API, SDK, CLI) goes through.

A rating is checked against its key's config (the project's, or the built-in
one for thumbs, faces and stars) and normalised to a 0..1 score; the project's
policy decides whether a person may change a rating and which answers can be
rated at all. Retries with the same id change nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from tuneback.domain import (
    CategoricalConfig,
    ContinuousConfig,
    Feedback,
    FeedbackConfigSet,
    FeedbackKind,
    FeedbackRecord,
    FeedbackRecorded,
    FeedbackRetracted,
    FeedbackSource,
    FreeformConfig,
    ProjectConfigured,
    ProjectSettings,
    Run,
    StoredEvent,
    normalize_score,
    validate,
)
from tuneback.domain.feedback import RawValue
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.storage import NewEvent, Store

Config = ContinuousConfig | CategoricalConfig | FreeformConfig


class Rating(TypedDict, total=False):
    """What a person said about an answer, as every way of recording it passes it on."""

    value: RawValue
    score: float | None
    kind: FeedbackKind | None
    comment: str | None
    correction: str | None
    user: str | None
    source: FeedbackSource
    metadata: Mapping[str, Any] | None
    feedback_id: str | None


def infer_kind(key: str, *, comment: str | None, correction: str | None) -> FeedbackKind:
    if correction:
        return "correction"
    if key == "comment" and comment:
        return "comment"
    return "explicit"


class FeedbackService:
    """Feedback on runs and conversations, checked against the project's configs and policy."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def config_for(self, project: str, key: str) -> Config | None:
        """The config the project declared for ``key``; None means the built-in rules."""
        return self.store.project_rules(project)[1].get(key)

    def set_config(self, project: str, key: str, config: Config | Mapping[str, Any]) -> Config:
        """Declare what ``key`` accepts in ``project``; later feedback must follow it."""
        payload = validate(
            FeedbackConfigSet,
            {"project": project, "key": key, "config": config},
            what="feedback config",
        )
        self.store.append(payload)
        return payload.config

    def configure_project(
        self, project: str, settings: ProjectSettings | Mapping[str, Any]
    ) -> ProjectSettings:
        parsed = (
            settings
            if isinstance(settings, ProjectSettings)
            else validate(ProjectSettings, dict(settings), what="project settings")
        )
        self.store.append(ProjectConfigured(project=project, settings=parsed))
        return parsed

    def record(
        self, *, run_id: str, key: str, scope: str | None = None, **rating: Unpack[Rating]
    ) -> FeedbackRecord:
        """Record feedback on a run and return it as stored.

        ``value`` is what the person chose (👍, 4 stars, a label) and is scored by
        the key's config; ``score`` may be given instead, already in 0..1.
        Sending the same ``feedback_id`` with the same feedback again returns the
        first result; the same id with different feedback is a conflict. With a
        ``scope``, only runs of that project can be rated.
        """
        feedback = self.build(self._run(run_id, scope), key=key, **rating)
        event = self.new_event(feedback)
        return self._answer(feedback, event, self.store.append_many([event])[0])

    async def record_async(
        self, *, run_id: str, key: str, scope: str | None = None, **rating: Unpack[Rating]
    ) -> FeedbackRecord:
        """:meth:`record` for a coroutine.

        When the run and the project's rules are in memory (the usual case while
        people rate answers) nothing blocks; otherwise one trip to a worker thread
        reads them. The write itself is awaited without holding a thread.
        """
        run = self.store.recent_run(run_id)
        rules = self.store.recent_rules(run.project) if run is not None else None
        if run is None or rules is None or rules[0].latest_only:
            feedback = await asyncio.to_thread(
                lambda: self.build(self._run(run_id, scope), key=key, **rating)
            )
        else:
            if scope is not None and run.project != scope:
                raise NotFoundError(f"no run with id {run_id}", details={"run_id": run_id})
            feedback = self.build(run, key=key, configs=rules[1], settings=rules[0], **rating)
        event = self.new_event(feedback, rules[0] if rules else None)
        stored = (await self.store.append_many_async([event]))[0]
        if stored.payload is not event.payload:
            return await asyncio.to_thread(self._answer, feedback, event, stored)
        return self._answer(feedback, event, stored)

    def record_on_conversation(
        self,
        *,
        conversation_id: str,
        key: str,
        message_id: str | None = None,
        scope: str | None = None,
        **rating: Unpack[Rating],
    ) -> FeedbackRecord:
        """Record feedback on a whole conversation, or on one of its messages.

        An answer's message with a run is rated through its run (the same as
        :meth:`record`); any other message (a user's question, an answer logged
        without a run) is rated on the conversation, with ``message_id`` in the
        feedback's metadata. The key's rules and the rate-once setting hold as
        for runs; ratings on the same target, key and user supersede each other.
        """
        conversation = self.store.get_conversation(conversation_id)
        if scope is not None and conversation.project != scope:
            raise NotFoundError(
                f"no conversation with id {conversation_id}",
                details={"conversation_id": conversation_id},
            )
        metadata = dict(rating.get("metadata") or {})
        if message_id is not None:
            message = self.store.get_message(message_id)
            if message.conversation_id != conversation.id:
                raise NotFoundError(
                    f"no message {message_id} in conversation {conversation_id}",
                    details={"message_id": message_id},
                )
            if message.run_id is not None:
                return self.record(run_id=message.run_id, key=key, scope=scope, **rating)
            metadata["message_id"] = message.id
        rating["metadata"] = metadata
        feedback = self._build(conversation.project, None, conversation.id, key=key, **rating)
        event = self.new_event(feedback)
        return self._answer(feedback, event, self.store.append_many([event])[0])

    def new_event(self, feedback: Feedback, settings: ProjectSettings | None = None) -> NewEvent:
        """The event that records ``feedback``, with the project's rate-once rule attached.

        Whether the rater already rated this answer is checked inside the write,
        so two ratings sent at once cannot both pass a locked key.
        """
        settings = settings or self.store.project_rules(feedback.project)[0]
        once = not settings.changeable and feedback.user is not None
        return NewEvent(FeedbackRecorded(feedback=feedback), feedback.id, once=once)

    def _run(self, run_id: str, scope: str | None) -> Run:
        run = self.store.get_run(run_id)
        if scope is not None and run.project != scope:
            # Another project's runs do not exist for this caller.
            raise NotFoundError(f"no run with id {run_id}", details={"run_id": run_id})
        return run

    def _answer(self, feedback: Feedback, event: NewEvent, stored: StoredEvent) -> FeedbackRecord:
        if stored.payload is not event.payload:
            # A retry of feedback stored earlier: answer with it as it is now.
            return self.store.get_feedback(feedback.id)
        # Just recorded, so it is current: no need to read it back.
        return FeedbackRecord.model_construct(**feedback.__dict__)

    def build(
        self,
        run: Run,
        *,
        key: str,
        configs: Mapping[str, Config] | None = None,
        settings: ProjectSettings | None = None,
        **rating: Unpack[Rating],
    ) -> Feedback:
        """Check feedback on ``run`` against the rules and return it, not yet stored.

        Batch writers pass the project's ``configs`` and ``settings`` once for
        many items instead of reading them again for each.
        """
        self._check_policy(
            run.project, run.id, run.conversation_id, key, rating.get("user"), settings
        )
        return self._build(
            run.project, run.id, run.conversation_id, key=key, configs=configs, **rating
        )

    def _build(
        self,
        project: str,
        run_id: str | None,
        conversation_id: str | None,
        *,
        key: str,
        configs: Mapping[str, Config] | None = None,
        **rating: Unpack[Rating],
    ) -> Feedback:
        """Feedback on a run or a conversation, scored by the key's rules and checked."""
        config = configs.get(key) if configs is not None else self.config_for(project, key)
        value, score = rating.get("value"), rating.get("score")
        if value is not None:
            normalised = normalize_score(key, value, config)
            if score is not None and normalised is not None and abs(score - normalised) > 1e-9:
                raise ValidationError(
                    f"{key}: score {score} does not match value {value!r} (scored {normalised})",
                    details={"key": key, "value": value, "score": score},
                )
            score = normalised if normalised is not None else score
        elif score is not None and isinstance(config, FreeformConfig):
            raise ValidationError(f"{key} is free-form and takes no score")
        comment, correction = rating.get("comment"), rating.get("correction")
        data: dict[str, Any] = {
            "project": project,
            "run_id": run_id,
            "conversation_id": conversation_id,
            "key": key,
            "kind": rating.get("kind") or infer_kind(key, comment=comment, correction=correction),
            "score": score,
            "value": value,
            "comment": comment,
            "correction": correction,
            "user": rating.get("user"),
            "source": rating.get("source", "end_user"),
            "metadata": dict(rating.get("metadata") or {}),
        }
        feedback_id = rating.get("feedback_id")
        if feedback_id is not None:
            data["id"] = feedback_id
        return validate(Feedback, data, what="feedback")

    def retract(self, feedback_id: str, *, user: str | None = None) -> FeedbackRecord:
        """Withdraw feedback; it stays in the history, marked retracted."""
        feedback = self.store.get_feedback(feedback_id)
        if user is not None and feedback.user not in (None, user):
            raise ConflictError("only the person who gave this feedback can retract it")
        if feedback.retracted_at is None:
            self.store.append(
                FeedbackRetracted(project=feedback.project, feedback_id=feedback.id, user=user)
            )
        return self.store.get_feedback(feedback_id)

    def _check_policy(
        self,
        project: str,
        run_id: str,
        conversation_id: str | None,
        key: str,
        user: str | None,
        settings: ProjectSettings | None = None,
    ) -> None:
        # A locked ("rate once") key is checked inside the write: see new_event.
        settings = settings or self.store.project_rules(project)[0]
        if settings.latest_only and conversation_id is not None:
            path = self.store.conversation_messages(conversation_id)
            answers = [m for m in path if m.role == "assistant" and m.run_id]
            if answers and answers[-1].run_id != run_id:
                raise ValidationError(
                    "only the latest answer can be rated in this project",
                    details={"run_id": run_id},
                )
