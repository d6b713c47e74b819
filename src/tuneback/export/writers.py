"""Writers: JSON lines, CSV, Parquet, and a Hugging Face ``datasets`` directory.

Every writer takes rows one at a time and keeps at most one batch in memory:
JSON lines go straight to a buffered file; Parquet gathers rows into Arrow
record batches and writes a row group of :data:`ROW_GROUP` rows at a time.
When every column is one JSON can hold as it is (the training formats), the
Arrow batches are parsed from the rows' JSON lines by Arrow's own reader, in C++,
rather than converted one Python object at a time.
Files are written under a temporary name in the output directory and renamed
into place only when the export succeeds, so a failed or interrupted export
never leaves a half-written file where a finished one is expected.

pyarrow and datasets are imported only when their writer is used, so the
JSONL and CSV exports need neither.

A CSV cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is a formula to Excel, LibreOffice and Google Sheets, and the
text comes from whoever chatted or rated: such a cell is written with a leading
``'`` (what OWASP recommends against CSV injection), which spreadsheets read as
"this is text". ``raw=True`` (``tuneback export --raw-csv``) writes the text as
it is, for programs that read the file rather than people who open it.
"""

from __future__ import annotations

import csv
import importlib
import os
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from tuneback.domain.json_encoding import json_bytes, json_text
from tuneback.errors import ConfigurationError

WRITERS: dict[str, str] = {
    "jsonl": "JSON lines, one row per line (what TRL and OpenAI read)",
    "csv": "CSV with a header; nested values as JSON text; formula-like cells quoted",
    "parquet": "Apache Parquet (pyarrow), typed columns",
    "hf": "a Hugging Face datasets directory (save_to_disk), train/test splits",
}

EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}

ARROW_BATCH = 1_024
"""Rows gathered as Python objects before they become one Arrow record batch (kept small:
thousands of live row dicts make Python's garbage collector rescan them again and again)."""

ROW_GROUP = 65_536
"""Rows in each Parquet row group (the last one holds what is left)."""

ARROW_LINES = 8_192
"""JSON lines gathered before Arrow parses them into one batch (bytes cost the GC nothing)."""

ARROW_LINE_BYTES = 16 << 20
"""...or fewer, once they hold this many bytes, so long rows do not pile up."""

LINE_KINDS = frozenset({"string", "float", "int", "bool", "messages", "input"})
"""Column kinds whose JSON is the column's value: such rows are parsed from their lines.
(``json`` columns hold JSON *text*, and timestamps are ISO text: those go through Python.)"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""

INSTALL_HINT = "pip install 'tuneback[train]' (or pyarrow and datasets)"


class RowWriter(Protocol):
    """Takes each row as data, with its JSON (``line``) when the export encoded it.

    A writer that ``needs_line`` writes the line and may be given no data (an
    empty mapping); one that ``needs_data`` always gets the row's data.
    """

    needs_line: bool
    needs_data: bool

    def write(self, data: Mapping[str, Any], line: bytes | None) -> None: ...

    def finish(self) -> None: ...

    def discard(self) -> None: ...


class JsonlWriter:
    needs_line = True
    needs_data = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("wb", buffering=1 << 20)

    def write(self, data: Mapping[str, Any], line: bytes | None) -> None:
        self._file.write(json_bytes(data) if line is None else line)
        self._file.write(b"\n")

    def finish(self) -> None:
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class CsvWriter:
    needs_line = False
    needs_data = True

    def __init__(self, path: Path, columns: dict[str, str], *, raw: bool = False) -> None:
        self.path = path
        self._columns = columns
        self._cell = _csv_cell if raw else _safe_csv_cell
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="", buffering=1 << 20)
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)

    def write(self, data: Mapping[str, Any], line: bytes | None) -> None:
        self._csv.writerow(
            [self._cell(data.get(name), kind) for name, kind in self._columns.items()]
        )

    def finish(self) -> None:
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _csv_cell(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind in ("messages", "input"):
        return json_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _safe_csv_cell(value: Any, kind: str) -> Any:
    cell = _csv_cell(value, kind)
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _optional(module: str, needed_by: str) -> Any:
    # import_module keeps these optional libraries (which ship no type hints)
    # out of import time and out of the type checker's way.
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(f"{needed_by} needs {module}: {INSTALL_HINT}") from None


def _pyarrow() -> Any:
    return _optional("pyarrow", "the parquet and hf writers")


def arrow_schema(columns: dict[str, str]) -> Any:
    pa = _pyarrow()
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {
        "string": pa.string(),
        "json": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "messages": pa.list_(message),
        "input": pa.struct([("messages", pa.list_(message))]),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns.items()])


class ArrowWriter:
    """Parquet (``stream=False``) or an Arrow IPC stream (what ``datasets`` maps from disk).

    Rows become an Arrow record batch every :data:`ARROW_BATCH` rows (or, parsed
    from their JSON lines, every :data:`ARROW_LINES`), and batches are written
    together as one Parquet row group of :data:`ROW_GROUP` rows: Python holds one
    small batch, Arrow's compact buffers one row group.
    """

    def __init__(self, path: Path, columns: dict[str, str], *, stream: bool = False) -> None:
        pa = _pyarrow()
        self.path = path
        self._pa = pa
        self._schema = arrow_schema(columns)
        # Parsed from the row's JSON when its columns allow (see LINE_KINDS).
        self.needs_line = set(columns.values()) <= LINE_KINDS
        self.needs_data = not self.needs_line
        self._rows: list[Mapping[str, Any]] = []
        self._lines: list[bytes] = []
        self._line_bytes = 0
        self._tables: list[Any] = []
        self._batched = 0
        self._stream = stream
        if self.needs_line:
            self._json = _optional("pyarrow.json", "the parquet and hf writers")
            # Fields a row has beyond the schema are dropped, as from_pylist drops them.
            self._parse_options = self._json.ParseOptions(
                explicit_schema=self._schema, unexpected_field_behavior="ignore"
            )
        if stream:
            self._writer: Any = pa.ipc.new_stream(str(path), self._schema)
        else:
            parquet = _optional("pyarrow.parquet", "the parquet writer")
            self._writer = parquet.ParquetWriter(str(path), self._schema, compression="zstd")

    def write(self, data: Mapping[str, Any], line: bytes | None) -> None:
        if self.needs_line:
            line = json_bytes(data) if line is None else line
            self._lines.append(line)
            self._line_bytes += len(line) + 1
            full = len(self._lines) >= ARROW_LINES or self._line_bytes >= ARROW_LINE_BYTES
        else:
            self._rows.append(data)
            full = len(self._rows) >= ARROW_BATCH
        if full:
            self._to_batch()
            if self._batched >= ROW_GROUP:
                self._flush()

    def _to_batch(self) -> None:
        if self._rows:
            batch = self._pa.RecordBatch.from_pylist(self._rows, schema=self._schema)
            self._tables.append(self._pa.Table.from_batches([batch], schema=self._schema))
            self._batched += batch.num_rows
            self._rows = []
        if self._lines:
            text = b"\n".join(self._lines)
            # One block for the whole batch: a block must hold every line it cuts.
            options = self._json.ReadOptions(use_threads=False, block_size=len(text) + 1)
            table = self._json.read_json(
                self._pa.BufferReader(text),
                read_options=options,
                parse_options=self._parse_options,
            )
            self._tables.append(table)
            self._batched += table.num_rows
            self._lines = []
            self._line_bytes = 0

    def _flush(self) -> None:
        self._to_batch()
        if self._tables:
            table = self._pa.concat_tables(self._tables)
            if self._stream:
                self._writer.write_table(table)
            else:
                self._writer.write_table(table, row_group_size=ROW_GROUP)
            self._tables = []
            self._batched = 0

    def finish(self) -> None:
        self._flush()
        self._writer.close()

    def discard(self) -> None:
        self._rows = []
        self._lines = []
        self._tables = []
        self._writer.close()
        self.path.unlink(missing_ok=True)


def save_hf_dataset(
    streams: dict[str, Path], rows: dict[str, int], columns: dict[str, str], destination: Path
) -> None:
    """Turn Arrow stream files (one per split) into a ``DatasetDict`` saved at ``destination``.

    ``Dataset.from_file`` memory-maps each file, so nothing is loaded whole. An
    empty split is made from the schema, and saved as one (empty) shard, since
    datasets cannot read back a split saved with none.
    """
    datasets = _optional("datasets", "the hf writer")
    splits = {
        name: datasets.Dataset.from_file(str(path))
        if rows.get(name)
        else datasets.Dataset(arrow_schema(columns).empty_table())
        for name, path in streams.items()
    }
    empty = {name: 1 for name in streams if not rows.get(name)}
    # Quieter than the default bars: the export shows its own progress.
    datasets.disable_progress_bars()
    try:
        datasets.DatasetDict(splits).save_to_disk(str(destination), num_shards=empty)
    finally:
        datasets.enable_progress_bars()


def replace_path(temporary: Path, final: Path) -> None:
    """Move a finished file or directory into place, replacing what ``--force`` allowed."""
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(temporary, final)
