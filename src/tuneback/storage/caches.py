"""What a store keeps in memory between reads: each project's rules, and recent runs.

Every rating checks its project's settings and feedback configs and names a
run, usually one just written or read. Keeping both here lets the hot write
path skip a database trip. Writes made through this store update the memory
when they commit; writes made by another process are seen once the rules
expire (``RULES_TTL``). Runs never change once stored, so they need no expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from tuneback.domain import ProjectSettings, Run, RunCompleted, RunFailed, StoredEvent
from tuneback.storage.rows import FeedbackConfigType

RULES_TTL = 1.0
"""Seconds a project's settings and feedback configs are kept between reads."""
RECENT_RUNS = 20_000
"""Runs kept in memory by id: a run never changes once stored, and ratings follow answers."""
_RULE_EVENTS = frozenset({"feedback.config_set", "project.configured"})

Rules = tuple[ProjectSettings, dict[str, FeedbackConfigType]]
"""A project's settings and its feedback configs by key."""


class StoreCaches:
    """Project rules for ``RULES_TTL`` seconds and the last ``RECENT_RUNS`` runs, by id."""

    def __init__(self, read_rules: Callable[[str], Rules]) -> None:
        self._read_rules = read_rules
        self._rules: dict[str, tuple[float, Rules]] = {}
        self._runs: dict[str, Run] = {}

    def rules(self, project: str) -> Rules:
        """The project's rules, read again at most once every ``RULES_TTL`` seconds."""
        now = time.monotonic()
        cached = self._rules.get(project)
        if cached is not None and cached[0] > now:
            return cached[1]
        rules = self._read_rules(project)
        self._rules[project] = (now + RULES_TTL, rules)
        return rules

    def fresh_rules(self, project: str) -> Rules | None:
        """The project's rules if they are in memory and fresh, else None (no database trip)."""
        cached = self._rules.get(project)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def forget_rules(self) -> None:
        self._rules.clear()

    def run(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def remember_run(self, run: Run) -> None:
        runs = self._runs
        runs[run.id] = run
        if len(runs) > RECENT_RUNS:
            # The oldest tenth goes: dicts keep insertion order.
            for old in list(runs)[: RECENT_RUNS // 10]:
                runs.pop(old, None)

    def forget_runs(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            self._runs.pop(run_id, None)

    def committed(self, written: list[StoredEvent]) -> None:
        """Called by the writer after each commit, with the events it stored."""
        for event in written:
            if event.type in _RULE_EVENTS:
                self._rules.pop(event.project, None)
            elif isinstance(event.payload, RunCompleted | RunFailed):
                self.remember_run(event.payload.run)
