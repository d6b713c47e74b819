"""``sft``, ``openai-sft`` and ``kto``: one answer per row, judged on its own.

Rules, applied to each selected run in id order:

``sft`` and ``openai-sft`` — ``{"messages": [...inputs, {"role": "assistant", ...}]}``
  1. a run that did not complete, or whose inputs are not chat messages, is skipped;
  2. a run with a current correction is included with the **correction** as the
     answer, whatever its score (the newest correction wins);
  3. otherwise a run is included when its score is >= ``threshold`` (default
     0.7: 👍, 🙂, 😀, 4–5 stars) and its output is not empty;
  4. unrated runs and runs scoring below the threshold are skipped.
  ``openai-sft`` also skips prompts with ``tool`` messages (OpenAI needs a
  ``tool_call_id`` that runs do not record). With ``--dataset``, both export the
  dataset's items instead (inputs + curated output), whatever their feedback.

``kto`` — ``{"prompt": [...], "completion": [{"role": "assistant", ...}], "label": bool}``
  1. as above, runs that did not complete or have no chat inputs are skipped;
  2. a run with a current correction gives two rows: the correction labelled
     ``true`` and the original output labelled ``false`` (only the first when
     they are equal);
  3. otherwise the score decides: >= ``threshold`` → ``true``, <= ``1 - threshold``
     → ``false``; scores in between are skipped as ambiguous, unrated runs as
     not rated.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from tuneback.export.filters import ExportRules
from tuneback.export.rows import (
    CHAT_ROLES,
    EMPTY_OUTPUT,
    NOT_RATED,
    OPENAI_ROLES,
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
    RunSelection,
    ScoredRun,
    count_dataset_items,
    count_runs,
    iter_dataset_items,
    iter_scored_runs,
)


def below(threshold: float) -> str:
    return f"score below {threshold:g}"


def ambiguous(threshold: float) -> str:
    return f"score between {1 - threshold:g} and {threshold:g} (ambiguous)"


def sft_outcomes(run: ScoredRun, rules: ExportRules, roles: frozenset[str]) -> list[Outcome]:
    prompt = chat_prompt(run, roles)
    if isinstance(prompt, Skip):
        return [prompt]
    if run.correction:
        answer = run.correction
    elif run.score is None:
        return [Skip(NOT_RATED)]
    elif run.score < rules.threshold:
        return [Skip(below(rules.threshold))]
    elif not run.output:
        return [Skip(EMPTY_OUTPUT)]
    else:
        answer = run.output
    return [Row({"messages": [*prompt, *assistant(answer)]}, prompt)]


def dataset_item_outcomes(item: ScoredRun, roles: frozenset[str]) -> list[Outcome]:
    prompt = chat_prompt(item, roles)
    if isinstance(prompt, Skip):
        return [prompt]
    if not item.output:
        return [Skip(EMPTY_OUTPUT)]
    return [Row({"messages": [*prompt, *assistant(item.output)]}, prompt)]


def kto_outcomes(run: ScoredRun, rules: ExportRules) -> list[Outcome]:
    prompt = chat_prompt(run)
    if isinstance(prompt, Skip):
        return [prompt]
    if run.correction:
        rows: list[Outcome] = [_kto_row(prompt, run.correction, True)]
        if run.output and run.output != run.correction:
            rows.append(_kto_row(prompt, run.output, False))
        return rows
    if run.score is None:
        return [Skip(NOT_RATED)]
    if not run.output:
        return [Skip(EMPTY_OUTPUT)]
    if run.score >= rules.threshold:
        return [_kto_row(prompt, run.output, True)]
    if run.score <= 1 - rules.threshold:
        return [_kto_row(prompt, run.output, False)]
    return [Skip(ambiguous(rules.threshold))]


def _kto_row(prompt: list[dict[str, object]], text: str, label: bool) -> Row:
    return Row({"prompt": prompt, "completion": assistant(text), "label": label}, prompt)


def _map_runs(
    store: Store, selection: RunSelection, build: partial[list[Outcome]]
) -> Iterator[Records]:
    for run in iter_scored_runs(store, selection):
        yield 1, build(run)


def _map_items(store: Store, dataset_id: str, roles: frozenset[str]) -> Iterator[Records]:
    for item in iter_dataset_items(store, dataset_id):
        yield 1, dataset_item_outcomes(item, roles)


def sft_sources(
    store: Store, selection: RunSelection, rules: ExportRules, *, openai: bool = False
) -> list[Source]:
    roles = OPENAI_ROLES if openai else CHAT_ROLES
    if selection.dataset_id is not None:
        dataset_id = selection.dataset_id
        return [
            Source(
                "dataset items",
                partial(count_dataset_items, store, dataset_id),
                partial(_map_items, store, dataset_id, roles),
            )
        ]
    build = partial(sft_outcomes, rules=rules, roles=roles)
    return [
        Source(
            "runs",
            partial(count_runs, store, selection),
            partial(_map_runs, store, selection, build),
            halves=True,
        )
    ]


def kto_sources(store: Store, selection: RunSelection, rules: ExportRules) -> list[Source]:
    build = partial(kto_outcomes, rules=rules)
    return [
        Source(
            "runs",
            partial(count_runs, store, selection),
            partial(_map_runs, store, selection, build),
            halves=True,
        )
    ]
