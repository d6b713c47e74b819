"""``dpo`` and ``openai-preference``: pairs of a better and a worse answer to one prompt.

Pairs come from three sources, read in this order (a pair already written by
an earlier source is skipped as a duplicate):

1. **comparisons** — outcome ``a``/``b``: the winner is chosen, the other
   rejected; a ranking gives every (higher, lower) pair. ``tie`` and
   ``both_bad`` give no pair, and neither does a comparison a re-vote
   replaced (only the newest vote counts). The prompt is the comparison's prompt (the
   chosen run's inputs when it has none). A candidate outside the filters, or
   missing, or failed, or empty, skips the pair.
2. **corrections** — a run with a current correction: the correction is
   chosen, the original output rejected (skipped when they are equal).
3. **rated answers to the same prompt** — completed, scored runs grouped by the
   user message they answer (regenerated answers are siblings) or, for runs
   without a conversation, by identical inputs. The best-rated answer (ties:
   the earliest id) is chosen against every other answer scoring at least
   ``min_gap`` (default 0.5) less. An answer alone in its group, or within
   ``min_gap`` of the best, is skipped.

Identical chosen and rejected texts never make a pair. Rows are
``{"prompt", "chosen", "rejected"}`` in TRL's conversational form, or OpenAI's
``{"input": {"messages"}, "preferred_output", "non_preferred_output"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from tuneback.export.filters import ExportRules
from tuneback.export.rows import (
    CHAT_ROLES,
    EMPTY_OUTPUT,
    OPENAI_ROLES,
    Message,
    Outcome,
    Records,
    Row,
    Skip,
    Source,
    assistant,
    chat_prompt,
)
from tuneback.storage import Store
from tuneback.storage.export_queries import (
    ComparisonRow,
    RunSelection,
    ScoredRun,
    count_comparisons,
    count_corrected_runs,
    count_rated_runs,
    iter_comparisons,
    iter_corrected_runs,
    iter_rated_groups,
)

Shape = Callable[[list[Message], str, str], dict[str, Any]]

TIE = "comparison is a tie"
BOTH_BAD = "comparison judged both answers bad"
SUPERSEDED = "comparison replaced by a re-vote"
CANDIDATE_MISSING = "comparison candidate outside the filters or missing"
IDENTICAL = "chosen and rejected answers are identical"
CORRECTION_SAME = "correction is the same as the answer"
ALONE = "no other rated answer to the same prompt"


def gap_too_small(min_gap: float) -> str:
    return f"score gap to the best answer below {min_gap:g}"


def trl_pair(prompt: list[Message], chosen: str, rejected: str) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": assistant(chosen), "rejected": assistant(rejected)}


def openai_pair(prompt: list[Message], chosen: str, rejected: str) -> dict[str, Any]:
    return {
        "input": {"messages": prompt},
        "preferred_output": assistant(chosen),
        "non_preferred_output": assistant(rejected),
    }


def _pair(prompt: list[Message], chosen: str, rejected: str, shape: Shape) -> Outcome:
    if chosen == rejected:
        return Skip(IDENTICAL)
    return Row(shape(prompt, chosen, rejected), prompt)


def _ordered_pairs(comparison: ComparisonRow) -> list[tuple[str, str]] | Skip:
    if comparison.superseded_by is not None:
        return Skip(SUPERSEDED)
    if comparison.outcome == "tie":
        return Skip(TIE)
    if comparison.outcome == "both_bad":
        return Skip(BOTH_BAD)
    if comparison.outcome in ("a", "b") and len(comparison.candidates) == 2:
        first, second = comparison.candidates
        return [(first, second)] if comparison.outcome == "a" else [(second, first)]
    ranking = comparison.ranking or []
    return [
        (better, worse) for index, better in enumerate(ranking) for worse in ranking[index + 1 :]
    ]


def comparison_outcomes(
    comparison: ComparisonRow, shape: Shape, roles: frozenset[str]
) -> list[Outcome]:
    pairs = _ordered_pairs(comparison)
    if isinstance(pairs, Skip):
        return [pairs]
    outcomes: list[Outcome] = []
    for chosen_id, rejected_id in pairs:
        chosen, rejected = comparison.runs.get(chosen_id), comparison.runs.get(rejected_id)
        if chosen is None or rejected is None:
            outcomes.append(Skip(CANDIDATE_MISSING))
            continue
        prompt = _comparison_prompt(comparison, chosen, roles)
        rejected_check = chat_prompt(rejected, roles)
        if isinstance(prompt, Skip):
            outcomes.append(prompt)
            continue
        if isinstance(rejected_check, Skip):
            outcomes.append(rejected_check)
            continue
        if not chosen.output or not rejected.output:
            outcomes.append(Skip(EMPTY_OUTPUT))
            continue
        outcomes.append(_pair(prompt, chosen.output, rejected.output, shape))
    return outcomes


def _comparison_prompt(
    comparison: ComparisonRow, chosen: ScoredRun, roles: frozenset[str]
) -> list[Message] | Skip:
    checked = chat_prompt(chosen, roles)
    if isinstance(checked, Skip) or not comparison.prompt:
        return checked
    stand_in = ScoredRun(chosen.id, chosen.project, None, "ok", comparison.prompt, None, None, None)
    return chat_prompt(stand_in, roles)


def correction_outcomes(run: ScoredRun, shape: Shape, roles: frozenset[str]) -> list[Outcome]:
    prompt = chat_prompt(run, roles)
    if isinstance(prompt, Skip):
        return [prompt]
    if not run.correction or not run.output:
        return [Skip(EMPTY_OUTPUT)]
    if run.correction == run.output:
        return [Skip(CORRECTION_SAME)]
    return [_pair(prompt, run.correction, run.output, shape)]


def sibling_outcomes(
    group: list[ScoredRun], rules: ExportRules, shape: Shape, roles: frozenset[str]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    usable: list[tuple[ScoredRun, list[Message]]] = []
    for run in group:
        prompt = chat_prompt(run, roles)
        if isinstance(prompt, Skip):
            outcomes.append(prompt)
        elif not run.output:
            outcomes.append(Skip(EMPTY_OUTPUT))
        else:
            usable.append((run, prompt))
    if len(usable) == 1:
        return [*outcomes, Skip(ALONE)]
    if not usable:
        return outcomes
    # Sorted by score, best first; the earliest id wins a tie, so output is stable.
    usable.sort(key=lambda pair: (-(pair[0].score or 0.0), pair[0].id))
    best, prompt = usable[0]
    best_score = best.score or 0.0
    for run, _ in usable[1:]:
        # A tolerance keeps a gap of exactly min_gap (0.75 - 0.25) from failing on rounding.
        if best_score - (run.score or 0.0) + 1e-9 < rules.min_gap:
            outcomes.append(Skip(gap_too_small(rules.min_gap)))
        else:
            outcomes.append(_pair(prompt, best.output or "", run.output or "", shape))
    return outcomes


def _comparisons(
    store: Store, selection: RunSelection, shape: Shape, roles: frozenset[str]
) -> Iterator[Records]:
    for comparison in iter_comparisons(store, selection):
        yield 1, comparison_outcomes(comparison, shape, roles)


def _corrections(
    store: Store, selection: RunSelection, shape: Shape, roles: frozenset[str]
) -> Iterator[Records]:
    for run in iter_corrected_runs(store, selection):
        yield 1, correction_outcomes(run, shape, roles)


def _siblings(
    store: Store, selection: RunSelection, rules: ExportRules, shape: Shape, roles: frozenset[str]
) -> Iterator[Records]:
    for group in iter_rated_groups(store, selection):
        yield len(group), sibling_outcomes(group, rules, shape, roles)


def preference_sources(
    store: Store, selection: RunSelection, rules: ExportRules, *, openai: bool = False
) -> list[Source]:
    shape: Shape = openai_pair if openai else trl_pair
    roles = OPENAI_ROLES if openai else CHAT_ROLES
    return [
        Source(
            "comparisons",
            partial(count_comparisons, store, selection),
            partial(_comparisons, store, selection, shape, roles),
        ),
        Source(
            "corrections",
            partial(count_corrected_runs, store, selection),
            partial(_corrections, store, selection, shape, roles),
        ),
        Source(
            "rated answers",
            partial(count_rated_runs, store, selection),
            partial(_siblings, store, selection, rules, shape, roles),
            halves=True,
        ),
    ]
