"""``tuneback export``: write feedback out as training data or flat tables."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from tuneback.cli.app import DatabaseOption, app, err, open_store, out
from tuneback.domain.common import validate
from tuneback.export import (
    DEFAULT_MIN_GAP,
    DEFAULT_THRESHOLD,
    FORMATS,
    WRITERS,
    ExportFilters,
    ExportRules,
    export_dataset,
)
from tuneback.export.halves import HALVES_MIN_RUNS
from tuneback.services.audit import CLI_ACTOR, AuditService
from tuneback.services.keys import PROJECT_NAME

ExportFormatName = Enum(  # type: ignore[misc]
    "ExportFormatName", {name.replace("-", "_"): name for name in FORMATS}, type=str
)
WriterName = Enum("WriterName", {name: name for name in WRITERS}, type=str)  # type: ignore[misc]

_WRITER_LINES = "\n".join(f"  {name:<8}{text}" for name, text in WRITERS.items())

EXPORT_HELP = f"""\
Export feedback as training data (sft, dpo, kto, openai-sft, openai-preference)
or as flat tables (runs, feedback), into the directory --output.

Files are named after the format (dpo.jsonl; dpo-train.jsonl and dpo-test.jsonl
with --split; a datasets directory dpo/ with --writer hf). Nothing is written
outside that directory, and existing files are kept unless --force.

\b
Which runs become rows:
  sft, openai-sft   runs with a correction (the correction is the answer), or
                    scoring >= --threshold (default {DEFAULT_THRESHOLD:g}); with --dataset,
                    that dataset's items
  dpo, openai-preference
                    comparisons (winner vs loser; every pair of a ranking),
                    corrections vs the original answer, and the best-rated
                    answer to a prompt vs each other answer to it (regenerated
                    siblings, or identical inputs) rated at least --min-gap
                    (default {DEFAULT_MIN_GAP:g}) lower
  kto               score >= --threshold → label true, <= 1 - threshold →
                    false, between → skipped; a correction → true, and the
                    answer it corrects → false
  runs, feedback    everything selected, nothing judged (--history adds
                    superseded and retracted feedback)

A run's score is the mean of its current feedback scores (on --key only, when
given). The summary lists every skipped row's reason. Rows are streamed, so
memory stays flat however many runs there are; with --dedup (the default) a row
identical to one already written is skipped. A progress bar goes to stderr.

\b
File types (--writer):
{_WRITER_LINES}

\b
  tuneback export dpo --output data/ --project demo --split 0.1
  tuneback export sft --output data/ --writer hf --since 2026-01-01
"""


class _RichProgress:
    """The export's progress as a rich bar on stderr, one task per source."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> _RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def begin(self, description: str, total: int | None) -> None:
        self._task = self._bar.add_task(description, total=total)

    def advance(self, records: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, records)


@app.command(help=EXPORT_HELP)
def export(
    format_name: Annotated[
        ExportFormatName, typer.Argument(metavar="FORMAT", help="What to export.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write into (made if missing).")
    ],
    writer: Annotated[
        WriterName, typer.Option("--writer", "-w", help="File type: jsonl, csv, parquet or hf.")
    ] = WriterName["jsonl"],
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(help="Only runs that ran at or after this (UTC; started_at, else recorded)."),
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Only runs that ran before this.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only runs of this model (repeat).")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Score runs by this feedback key only (e.g. thumbs).")
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Only runs scoring at least this.")
    ] = None,
    max_score: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Only runs scoring at most this.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Only this dataset (name or id); sft exports its items.")
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Score that makes an answer good.")
    ] = DEFAULT_THRESHOLD,
    min_gap: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="DPO: score gap between two answers.")
    ] = DEFAULT_MIN_GAP,
    history: Annotated[
        bool, typer.Option(help="runs/feedback: include superseded and retracted feedback.")
    ] = False,
    split: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Share of rows held out as a test split.")
    ] = 0.0,
    dedup: Annotated[bool, typer.Option(help="Drop rows identical to one already written.")] = True,
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
    raw_csv: Annotated[
        bool,
        typer.Option(
            "--raw-csv",
            help="csv: write cells as they are. By default a cell starting with =, +, -, @, "
            "tab or carriage return gets a leading ' so spreadsheets show it as text "
            "instead of running it as a formula.",
        ),
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (only on a terminal).")
    ] = True,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=2,
            help=f"An export of {HALVES_MIN_RUNS:,} runs or more (not feedback, nor with "
            "--dataset) is split in two. With 2, a second process reads the second half "
            "(on a SQLite file or PostgreSQL); with 1, this one reads it all. The files "
            "are the same either way.",
        ),
    ] = 2,
    database_url: DatabaseOption = None,
) -> None:
    filters = validate(
        ExportFilters,
        {
            "project": project,
            "since": since,
            "until": until,
            "models": tuple(model or ()),
            "key": key,
            "min_score": min_score,
            "max_score": max_score,
            "dataset": dataset,
        },
        what="filters",
    )
    rules = ExportRules(threshold=threshold, min_gap=min_gap, history=history)
    with open_store(database_url) as store:
        run = partial(
            export_dataset,
            store,
            format=format_name.value,
            output=output,
            writer=writer.value,
            filters=filters,
            rules=rules,
            split=split,
            dedup=dedup,
            force=force,
            raw_csv=raw_csv,
            processes=processes,
        )
        if progress and err.is_terminal:
            with _RichProgress() as bar:
                summary = run(progress=bar)
        else:
            summary = run()
        AuditService(store).record(
            action="export",
            actor=CLI_ACTOR,
            # A name no project can have found nothing; the filters below still show it.
            project=filters.project if PROJECT_NAME.fullmatch(filters.project or "") else None,
            target=str(output),
            details={
                "format": summary.format,
                "writer": summary.writer,
                "rows": summary.rows_written,
                "filters": filters.model_dump(mode="json", exclude_defaults=True),
            },
        )
    for line in summary.lines():
        out.print(line, markup=False)
