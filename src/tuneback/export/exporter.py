"""``export_dataset``: stream a format's rows from the store into files, with a summary.

Deduplication drops a row whose JSON equals one already written, checked a
batch of rows at a time against :class:`~tuneback.export.dedup.SeenRows`, which
keeps memory flat however many rows there are. The train/test split is
:func:`~tuneback.export.encoding.split_of`. A big export has its second half
read by a second process (:mod:`tuneback.export.halves`).

A format reads several sources in turn (DPO: comparisons, corrections, rated
answers). Each is opened while the one before it is written: its count and its
query up to the first rows run in helper threads, waiting on the database
without Python's lock, so the sort behind a source costs no time of its own.

Progress is reported every :data:`PROGRESS_STEP` records rather than each one,
so a million-run export makes hundreds of calls to a progress bar, not a million.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from tuneback.errors import ValidationError
from tuneback.export.dedup import SeenRows, fingerprint
from tuneback.export.encoding import EncodedRow, RowEncoding
from tuneback.export.filters import ExportFilters, ExportRules
from tuneback.export.formats import ExportFormat, get_format
from tuneback.export.halves import SecondHalf, split_sources
from tuneback.export.paths import output_directory, output_file
from tuneback.export.rows import DUPLICATE, Records, Row, Skip, Source
from tuneback.export.summary import ExportSummary, WrittenFile, ordered_reasons
from tuneback.export.writers import (
    EXTENSIONS,
    WRITERS,
    ArrowWriter,
    CsvWriter,
    JsonlWriter,
    RowWriter,
    replace_path,
    save_hf_dataset,
)
from tuneback.storage import Store

DEDUP_BATCH = 4_096
"""Rows held back until their fingerprints are checked together."""

PROGRESS_STEP = 2_048

NO_DATA: Mapping[str, Any] = MappingProxyType({})


class ExportProgress(Protocol):
    """Told about each source as it starts and, every few thousand, how many records were read."""

    def begin(self, description: str, total: int | None) -> None: ...

    def advance(self, records: int) -> None: ...


def export_dataset(
    store: Store,
    *,
    format: str,
    output: str | Path,
    writer: str = "jsonl",
    filters: ExportFilters | None = None,
    rules: ExportRules | None = None,
    split: float = 0.0,
    dedup: bool = True,
    force: bool = False,
    raw_csv: bool = False,
    progress: ExportProgress | None = None,
    processes: int = 2,
) -> ExportSummary:
    """Export ``format`` rows into the directory ``output``; returns what was written and skipped.

    Files are named after the format: ``sft.jsonl``, or ``sft-train.jsonl`` and
    ``sft-test.jsonl`` with ``split``; the ``hf`` writer saves a ``DatasetDict``
    (``train``, and ``test`` with ``split``) in the directory ``output/sft``.
    Existing files are replaced only with ``force``. CSV cells that a
    spreadsheet would run as formulas get a leading ``'`` unless ``raw_csv``.
    With ``processes=1`` no second process reads half of a big export.
    """
    started = time.perf_counter()
    spec = get_format(format)
    if writer not in WRITERS:
        raise ValidationError(f"unknown writer {writer!r}: choose one of {', '.join(WRITERS)}")
    if not 0.0 <= split < 1.0:
        raise ValidationError(
            f"split is the share of rows kept for testing, in [0, 1); got {split}"
        )
    selection = (filters or ExportFilters()).selection(store)
    rules = rules or ExportRules()
    directory = output_directory(output)
    splits = ("train", "test") if split > 0 else ("train",)
    token = secrets.token_hex(4)

    finals = _final_paths(directory, spec, writer, splits, force)
    temporaries = {
        name: directory / f".{path.name}.{token}.partial" for name, path in finals.items()
    }
    if writer == "hf":
        hf_final = output_file(directory, spec.name, force=force)
        hf_temporary = directory / f".{spec.name}.{token}.partial"
    writers = _open_writers(spec, writer, temporaries, raw_csv=raw_csv)

    seen = SeenRows(str(directory)) if dedup and spec.training else None
    encoding = RowEncoding.of(
        split,
        encode=seen is not None or any(w.needs_line for w in writers.values()),
        keep_data=any(w.needs_data for w in writers.values()),
    )
    sink = _RowSink(writers, encoding, seen)
    records_read = 0
    opened: _OpenedAhead | None = None
    second_half: SecondHalf | None = None
    try:
        spool = directory / f".{spec.name}.{token}.half"
        sources, second_half = split_sources(
            store, spec, selection, rules, encoding, spool, processes=processes
        )
        opened = _OpenedAhead(sources, counted=progress is not None)
        for source in opened:
            if progress is not None:
                progress.begin(source.description, source.total)
            unreported = 0
            for records, outcomes in source.records():
                records_read += records
                for outcome in outcomes:
                    sink.take(outcome)
                unreported += records
                if progress is not None and unreported >= PROGRESS_STEP:
                    progress.advance(unreported)
                    unreported = 0
            sink.flush()
            if progress is not None and unreported:
                progress.advance(unreported)
        for open_writer in writers.values():
            open_writer.finish()
        if writer == "hf":
            save_hf_dataset(temporaries, dict(sink.written), spec.columns, hf_temporary)
            replace_path(hf_temporary, hf_final)
            files = [
                WrittenFile(split=name, path=str(hf_final), rows=sink.written[name])
                for name in splits
            ]
        else:
            for name, temporary in temporaries.items():
                replace_path(temporary, finals[name])
            files = [
                WrittenFile(split=name, path=str(finals[name]), rows=sink.written[name])
                for name in splits
            ]
    except BaseException:
        for open_writer in writers.values():
            open_writer.discard()
        raise
    finally:
        # The second process first: a source opened ahead may be waiting for it to end.
        if second_half is not None:
            second_half.close()
        if opened is not None:
            opened.close()
        sink.close()
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
    return ExportSummary(
        format=spec.name,
        writer=writer,
        records_read=records_read,
        rows_written=sum(sink.written.values()),
        rows_skipped=sum(sink.skipped.values()),
        skipped=ordered_reasons(sink.skipped),
        files=files,
        seconds=round(time.perf_counter() - started, 3),
    )


def _final_paths(
    directory: Path, spec: ExportFormat, writer: str, splits: tuple[str, ...], force: bool
) -> dict[str, Path]:
    if writer == "hf":
        # Arrow streams gathered here, then saved as one dataset directory.
        return {name: directory / f"{spec.name}-{name}.arrow" for name in splits}
    extension = EXTENSIONS[writer]
    if len(splits) == 1:
        return {"train": output_file(directory, f"{spec.name}.{extension}", force=force)}
    return {
        name: output_file(directory, f"{spec.name}-{name}.{extension}", force=force)
        for name in splits
    }


def _open_writers(
    spec: ExportFormat, writer: str, paths: dict[str, Path], *, raw_csv: bool
) -> dict[str, RowWriter]:
    opened: dict[str, RowWriter] = {}
    try:
        for name, path in paths.items():
            opened[name] = _open_writer(spec, writer, path, raw_csv=raw_csv)
    except BaseException:
        for done in opened.values():
            done.discard()
        raise
    return opened


def _open_writer(spec: ExportFormat, writer: str, path: Path, *, raw_csv: bool) -> RowWriter:
    if writer == "jsonl":
        return JsonlWriter(path)
    if writer == "csv":
        return CsvWriter(path, spec.columns, raw=raw_csv)
    return ArrowWriter(path, spec.columns, stream=writer == "hf")


_NOTHING: Any = object()
"""What opening a source without a single record gives."""


class _Opening:
    """A source being opened by helper threads: its count, and its query run up to its
    first records.

    Both wait on the database (SQLite sorts and PostgreSQL plans without Python's
    lock), so the source before it is written meanwhile instead of after.
    """

    def __init__(self, source: Source, helpers: ThreadPoolExecutor, *, counted: bool) -> None:
        self.description = source.description
        self._records = source.records()
        self._first = helpers.submit(next, self._records, _NOTHING)
        self._count = helpers.submit(source.count) if counted else None

    @property
    def total(self) -> int | None:
        return None if self._count is None else self._count.result()

    def records(self) -> Iterator[Records]:
        first = self._first.result()  # raises what opening the source raised
        if first is not _NOTHING:
            yield first
            yield from self._records

    def wait(self) -> None:
        futures: list[Future[Any]] = [self._first]
        if self._count is not None:
            futures.append(self._count)
        wait(futures)

    def close(self) -> None:
        self.wait()
        close = getattr(self._records, "close", None)
        if close is not None:  # a generator: closing it ends its stream
            close()


class _OpenedAhead:
    """The format's sources in order, each opened while the one before it is written."""

    def __init__(self, sources: Iterable[Source], *, counted: bool) -> None:
        self._sources = iter(sources)
        self._counted = counted
        # A source's count and its query: the most that ever run at once.
        self._helpers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tuneback-export")
        self._current: _Opening | None = None
        self._next = self._open_next()

    def _open_next(self) -> _Opening | None:
        source = next(self._sources, None)
        if source is None:
            return None
        return _Opening(source, self._helpers, counted=self._counted)

    def __iter__(self) -> Iterator[_Opening]:
        while self._next is not None:
            self._current, self._next = self._next, None
            # The next source opens once this one is open, so two helpers are enough.
            self._current.wait()
            self._next = self._open_next()
            yield self._current
            self._current.close()
            self._current = None

    def close(self) -> None:
        """Close whatever is still open (the export stopped early, or failed)."""
        for opening in (self._current, self._next):
            if opening is not None:
                opening.close()
        self._current = self._next = None
        self._helpers.shutdown()


class _RowSink:
    """Where outcomes go: skips are counted, rows split, deduplicated and written.

    Rows held back for deduplication keep only their JSON when no writer needs
    their data: bytes cost the garbage collector nothing, thousands of live
    dicts make it rescan them over and over. A split export's second half
    arrives already encoded.
    """

    def __init__(
        self, writers: dict[str, RowWriter], encoding: RowEncoding, seen: SeenRows | None
    ) -> None:
        self.written: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self._writers = writers
        self._encoding = encoding
        self._seen = seen
        self._pending: list[tuple[str, bytes, Mapping[str, Any]]] = []

    def take(self, outcome: Row | Skip | EncodedRow) -> None:
        if isinstance(outcome, Skip):
            self.skipped[outcome.reason] += 1
            return
        name, line, data = self._encoding.encoded(outcome) if isinstance(outcome, Row) else outcome
        if data is None:
            data = NO_DATA
        if self._seen is None or line is None:
            self._writers[name].write(data, line)
            self.written[name] += 1
            return
        self._pending.append((name, line, data))
        if len(self._pending) >= DEDUP_BATCH:
            self.flush()

    def flush(self) -> None:
        """Check the held-back rows against those already written, and write the new ones."""
        if self._seen is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        firsts = self._seen.first_sightings([fingerprint(line) for _, line, _ in pending])
        for (name, line, data), first in zip(pending, firsts, strict=True):
            if first:
                self._writers[name].write(data, line)
                self.written[name] += 1
            else:
                self.skipped[DUPLICATE] += 1

    def close(self) -> None:
        if self._seen is not None:
            self._seen.close()
