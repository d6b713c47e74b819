"""A big export's second half, read by a second process while this one writes the first.

A selection of at least :data:`HALVES_MIN_RUNS` runs is split in two: formats
whose sources read runs in id order (``sft``, ``openai-sft``, ``kto``, ``runs``)
at its middle run id, the preference formats' rated answers (read by group) at
a group key near the middle. This process reads the first half as usual. A
second one (a fresh interpreter, started as ``python -c`` so that nothing of the
caller's script runs again in it, with its own connection) reads the second half
meanwhile: it turns each record into rows, encodes them and picks their split,
and spools them to a file beside the output. A split source's spooled rows are
deduplicated and written right after its first half, so the files are byte for
byte those one process would write. Python's own work per row, which one process
does on one core, is shared by two; so is SQLite's, which runs in the reading
process.

The spool is a series of pickled batches, each ``(source, records, outcomes)``
with skips and :class:`~tuneback.export.encoding.EncodedRow` s, then one last
``(None, 0, error)``: ``None`` when the half was read to its end, else what
stopped it, raised here. As it ends, the second process prints how many records
it spooled of each source (one JSON line): a progress bar's total for a second
half, which a count would have cost the database the half's work once more. A
second process whose parent is gone stops and deletes its spool.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import IO, Any

import tuneback
from tuneback.errors import StorageError
from tuneback.export.encoding import EncodedRow, RowEncoding
from tuneback.export.filters import ExportRules
from tuneback.export.formats import ExportFormat, get_format
from tuneback.export.rows import Outcome, Records, Row, Source
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, middle_group, middle_run_id

HALVES_MIN_RUNS = 200_000
"""Below this many runs a second process's start (about half a second) outweighs its help."""

SPOOL_BATCH = 1_024
"""Records per pickled batch in the spool."""


@dataclass(frozen=True)
class _Half:
    """What the second process is told: everything it needs to read its half on its own."""

    url: str
    format: str
    selection: RunSelection
    rules: ExportRules
    encoding: RowEncoding
    spool: Path
    parent: int
    """The process id of the export: once it is gone, the second half is of no use."""


def split_sources(
    store: Store,
    spec: ExportFormat,
    selection: RunSelection,
    rules: ExportRules,
    encoding: RowEncoding,
    spool: Path,
    *,
    processes: int,
) -> tuple[list[Source], SecondHalf | None]:
    """The format's sources, with the second half of a big selection read by another process.

    Returns the sources to read in order (each split source's second half right
    after its first) and the second process, if one was started (close it when
    the export ends, however it ends).
    """
    halves = (
        _halves(store, spec, selection)
        if processes >= 2
        and spec.halves is not None
        and selection.dataset_id is None
        and store.database.seen_by_other_processes
        else None
    )
    if halves is None:
        return spec.sources(store, selection, rules), None
    first, second = halves
    url = store.url.render_as_string(hide_password=False)
    half = SecondHalf(_Half(url, spec.name, second, rules, encoding, spool, os.getpid()))
    try:
        seconds = iter(_split(spec.sources(store, second, rules)))
        sources: list[Source] = []
        for source in spec.sources(store, first, rules):
            sources.append(source)
            if source.halves:
                index, after = next(seconds)
                description = f"{after.description} (second half)"
                sources.append(
                    Source(description, partial(half.total, index), partial(half.records, index))
                )
    except BaseException:
        half.close()
        raise
    return sources, half


def _halves(
    store: Store, spec: ExportFormat, selection: RunSelection
) -> tuple[RunSelection, RunSelection] | None:
    """The selection's two halves, if it is big enough to split."""
    if spec.halves == "runs":
        middle = middle_run_id(store, selection, at_least=HALVES_MIN_RUNS)
        if middle is None:
            return None
        return replace(selection, before_id=middle), replace(selection, from_id=middle)
    middle = middle_group(store, selection, at_least=HALVES_MIN_RUNS)
    if middle is None:
        return None
    return replace(selection, before_group=middle), replace(selection, from_group=middle)


def _split(sources: list[Source]) -> list[tuple[int, Source]]:
    """The sources a split narrows, numbered as the second process spools them."""
    return list(enumerate(source for source in sources if source.halves))


class SecondHalf:
    """The process reading a split export's second half into its spool, and the spool's reader."""

    def __init__(self, half: _Half) -> None:
        self._spool_path = half.spool
        # The same tuneback, wherever this one was imported from.
        home = str(Path(tuneback.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (home, env.get("PYTHONPATH"))))
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from tuneback.export.halves import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert self._process.stdin is not None
            with self._process.stdin as stdin:
                # On its standard input, not its command line: the URL may hold a password.
                stdin.write(pickle.dumps(half, pickle.HIGHEST_PROTOCOL))
        except BaseException:
            self._process.kill()
            self._process.wait()
            raise
        self._spool: IO[bytes] | None = None
        self._pending: tuple[int | None, int, Any] | None = None
        self._totals: dict[int, int] | None = None
        self._ending = threading.Lock()

    def total(self, source: int) -> int:
        """How many records the second half's ``source`` holds, once the process has ended."""
        totals = self._end()
        if source not in totals:
            raise StorageError(self._ended())
        return totals[source]

    def _end(self) -> dict[int, int]:
        """Wait for the process to end (reading its output, so it never waits on a full
        pipe); the records it reported of each source, none if it reported nothing."""
        with self._ending:
            if self._totals is None:
                assert self._process.stdout is not None
                lines = self._process.stdout.read().splitlines()
                self._process.wait()
                try:
                    self._totals = {int(k): int(n) for k, n in json.loads(lines[-1]).items()}
                except (IndexError, ValueError, AttributeError):
                    self._totals = {}
            return self._totals

    def records(self, source: int) -> Iterator[Records]:
        """The spooled records of the second half's ``source``, once the process has ended."""
        for index, records, outcomes in self._batches():
            if index != source:
                self._pending = (index, records, outcomes)
                return
            yield records, outcomes

    def _batches(self) -> Iterator[tuple[int | None, int, Any]]:
        if self._spool is None:
            self._end()
            try:
                self._spool = self._spool_path.open("rb")
            except FileNotFoundError:
                raise StorageError(self._ended()) from None
        if self._pending is not None:
            batch, self._pending = self._pending, None
            yield batch
        while True:
            try:
                index, records, outcomes = pickle.load(self._spool)
            except (EOFError, pickle.UnpicklingError):  # cut short
                raise StorageError(self._ended()) from None
            if index is None:
                if outcomes is not None:
                    raise outcomes
                self._pending = (None, 0, None)
                return
            yield index, records, outcomes

    def _ended(self) -> str:
        return (
            "the process reading the second half of the export ended "
            f"(exit code {self._process.returncode}) before it finished: export again"
        )

    def close(self) -> None:
        """Stop the process if it still runs, and delete its spool."""
        if self._process.poll() is None:
            self._process.terminate()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        if self._spool is not None:
            self._spool.close()
        self._spool_path.unlink(missing_ok=True)


class _Orphaned(Exception):
    """The export that started this process is gone."""


def main() -> None:
    """The second process: its half comes pickled on standard input."""
    totals = read_half(pickle.load(sys.stdin.buffer))
    print(json.dumps(totals), flush=True)


def read_half(half: _Half) -> dict[int, int]:
    """Read the half's sources, encode their rows, spool them; the records of each source."""
    totals: dict[int, int] = {}
    with half.spool.open("wb") as spool:
        try:
            _check_parent(half)
            with Store(half.url, migrate_schema=False) as store:
                spec = get_format(half.format)
                for index, source in _split(spec.sources(store, half.selection, half.rules)):
                    _spool_source(spool, index, source, half, totals)
        except _Orphaned:
            half.spool.unlink(missing_ok=True)
            return totals
        except BaseException as error:  # raised again by the process that reads the spool
            pickle.dump((None, 0, _picklable(error)), spool, pickle.HIGHEST_PROTOCOL)
            return totals
        pickle.dump((None, 0, None), spool, pickle.HIGHEST_PROTOCOL)
    return totals


def _spool_source(
    spool: IO[bytes], index: int, source: Source, half: _Half, totals: dict[int, int]
) -> None:
    """Spool one source's batches, adding their records to its total as they go
    (so a source that fails has a total too, and the error in the spool is what is raised)."""
    encoded = half.encoding.encoded
    totals[index] = 0
    batch: list[Outcome | EncodedRow] = []
    records = 0

    def dump() -> None:
        pickle.dump((index, records, batch), spool, pickle.HIGHEST_PROTOCOL)
        totals[index] += records

    for read, outcomes in source.records():
        records += read
        for outcome in outcomes:
            batch.append(encoded(outcome) if isinstance(outcome, Row) else outcome)
        if records >= SPOOL_BATCH:
            _check_parent(half)
            dump()
            batch, records = [], 0
    if records or batch:
        dump()


def _check_parent(half: _Half) -> None:
    if os.getppid() != half.parent:
        raise _Orphaned


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return StorageError(f"reading the second half of the export failed: {error!r}")
    return error
