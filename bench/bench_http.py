"""The HTTP write path under wrk, against a bare FastAPI ceiling measured in the same run.

Every target is a real server in a child process on a free loopback port, waited for
until it answers and killed after (its whole process group):

  bare        a bare FastAPI app under uvicorn (access log off, log level warning) with
              the same two routes taking the same bodies (bench/http/bare.py):
              POST /v1/chat/completions parses an OpenAI-shaped chat request with
              pydantic and answers an OpenAI-shaped chat.completion echoing the last
              user message; POST /api/v1/feedback parses tuneback's FeedbackCreate and
              answers 201. Both are `async def` routes (no thread-pool hop: the fastest
              FastAPI can answer). This is the ceiling: FastAPI, pydantic and uvicorn
              with no work behind.
  bare-sqlite the same app, but each request's body is committed to a SQLite file
              before it answers: one row in one table, the rows of one turn of the
              event loop inserted and committed together (as tuneback's SQLite writer
              groups them). What acknowledging after commit costs at the least.
  sqlite-1    `tuneback serve --model echo --no-auth` on a fresh SQLite file.
  postgres-1  the same on a fresh schema of --postgres, dropped after.
  postgres-4  the same with `--workers 4` (given 5 s more once it first answers, for the
              other workers to load); skipped while `serve` has no --workers.
  pykoi       pykoi 0.0.11's own FastAPI app around an echo model, installed in its own
              venv (--pykoi-venv, made on first use); its chat is POST /chat/{message}
              and its feedback is the vote, POST /chat/qa_table/update {"id",
              "vote_status"}. Its RAG module, which needs the `rag` extra, is stubbed
              (see bench/http/pykoi_echo.py). Skipped, with the reason, when it cannot
              be installed.

tuneback runs with TUNEBACK_LOG_LEVEL=warning (so no access log, like the others).

Load: for each target and endpoint, `wrk -t2 -c32 -d6s --latency -s SCRIPT URL` with the
Lua scripts in bench/http/, after a warm-up run of --warmup seconds with the same script.
Every server is started first and stays up; then --rounds rounds (3) each load every target
in turn. This machine's speed drifts by a third or more over minutes, so a target measured
only after another may look faster or slower than it is: taking turns, every target meets
the same drift. Each cell is the round with the median req/s; each ratio (to the bare app,
and tuneback's to pykoi) is the median of the rounds' own ratios, with their range.
Before the feedback runs, 200 runs are created (POST /api/v1/ingest; on pykoi 200 chats)
and the script spreads thumbs up/down over them, each request from a new user (thread id
and a per-thread counter, plus a tag per wrk process), so no rating supersedes another.

Reported per target and endpoint: req/s counts only successful answers (2xx, and for
pykoi not its 200 {"status": "500"}), p50 and p99 from wrk's latency distribution, the
non-2xx answers (counted per status by the Lua scripts) and wrk's socket errors (both
summed over the rounds), and the ratio to the bare app on the same endpoint; then
tuneback against pykoi; then each aim of the write path (one process at 0.7x the bare
app, four workers at 2x one, p99 under 50 ms) with what this run measured and whether
it is met. A run with errors shows them; they are never counted as throughput.

Sanity: on tuneback, the rows in `runs` (chat) and `feedback` (feedback), on bare-sqlite
the rows in `requests` (both), and on pykoi the rows in `question_answer` (chat), are
counted in the database before and after each measured run: the growth must be at least
the 2xx answers and at most every request wrk sent (answered, or in flight when it
stopped). Otherwise the row says MISMATCH and the exit status is 1, as it is when a
target fails to start. A pykoi vote updates its answer in place, so it has no count to
check.

wrk runs on the same cores as the server; the load average before and after is printed,
with a warning when other work was running.

Needs Debian's wrk (`apt-get install -y wrk`) and PostgreSQL for the postgres targets.

    python bench/bench_http.py [-d 6] [-c 32] [-t 2] [--warmup 2] [--rounds 3]
        [--targets bare,sqlite-1,postgres-1,postgres-4,pykoi] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tuneback.domain import new_id

HERE = Path(__file__).resolve()
SCRIPTS = HERE.parent / "http"
TARGETS = ("bare", "bare-sqlite", "sqlite-1", "postgres-1", "postgres-4", "pykoi")
RUNS = 200
PYKOI_VERSION = "0.0.11"
STARTUP_SECONDS = 90.0
WORKER_SETTLE = 5.0  # seconds more for the other workers once the first one answers
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tuneback-bench"


# -- servers in a child process ----------------------------------------------------------


class TargetFailed(Exception):
    """A target that could not be measured; the run goes on with the next one."""


class Skipped(Exception):
    """A target that cannot run here, with the reason."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the server and everything it started (its session's process group)."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def child_server(
    name: str,
    argv: list[str],
    port: int,
    logs: Path,
    *,
    ready: str = "/healthz",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    settle: float = 0.0,
) -> Iterator[str]:
    """Start ``argv`` (listening on ``port``), yield its URL once ``ready`` answers 200
    and ``settle`` more seconds have passed (for workers still importing the app)."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise TargetFailed(
                    f"{name} exited with {process.returncode} before answering:\n{tail(log)}"
                )
            try:
                if httpx.get(url + ready, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TargetFailed(f"{name} did not answer in {STARTUP_SECONDS:.0f}s:\n{tail(log)}")
            time.sleep(0.2)
        time.sleep(settle)
        yield url
    finally:
        stop(process)


# -- databases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    url: str

    def count(self, table: str) -> int:
        query = f"SELECT count(*) FROM {table}"
        if self.url.startswith("sqlite:///"):
            path = self.url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(path, timeout=30)) as conn:
                return int(conn.execute(query).fetchone()[0])
        with psycopg.connect(self.url) as conn:
            row = conn.execute(query).fetchone()
            assert row is not None
            return int(row[0])


@contextmanager
def postgres_schema(admin_url: str) -> Iterator[Database]:
    schema = f"bench_http_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in admin_url else "?"
    try:
        yield Database(f"{admin_url}{joiner}options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def settled(count: Callable[[], int], limit: float = 20.0) -> int:
    """The count once two reads half a second apart agree (writes may still be landing)."""
    deadline = time.monotonic() + limit
    last = count()
    while True:
        time.sleep(0.5)
        now = count()
        if now == last or time.monotonic() > deadline:
            return now
        last = now


# -- wrk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    duration: int
    warmup: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


@dataclass
class WrkResult:
    requests: int
    wrk_rps: float  # wrk's Requests/sec: every answer, whatever its status
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    app_errors: int  # 2xx answers that say they failed (pykoi's {"status": "500"})
    socket_errors: dict[str, int]
    wrk_non_2xx_3xx: int

    @property
    def ok(self) -> int:
        answered = sum(n for code, n in self.statuses.items() if code.startswith("2"))
        return answered - self.app_errors

    @property
    def non_2xx(self) -> int:
        return self.requests - self.ok

    @property
    def ok_rps(self) -> float:
        return self.wrk_rps * self.ok / self.requests if self.requests else 0.0

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())

    def problems(self) -> str:
        """What went wrong, for the report: '' for a clean run."""
        parts = [f"{n}x {code}" for code, n in sorted(self.statuses.items()) if code[0] != "2"]
        if self.app_errors:
            parts.append(f"{self.app_errors}x 2xx saying it failed")
        parts += [f"{n} socket {kind}" for kind, n in self.socket_errors.items() if n]
        return ", ".join(parts)


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """wrk's text report with ``--latency``, and the status line of bench/http/stats.lua."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"no {pattern!r} in wrk's output:\n{output}")
        return match

    statuses: dict[str, int] = {}
    app_errors = 0
    for token in find(r"^bench-statuses(.*)$").group(1).split():
        key, _, value = token.partition("=")
        if key == "app-errors":
            app_errors = int(value)
        else:
            statuses[key] = int(value)
    sockets = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        sockets = dict(zip(sockets, map(int, errors.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(find(r"(\d+) requests in ").group(1)),
        wrk_rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(*find(rf"^\s+50%\s+{_TIME}").groups()),
        p99_ms=_ms(*find(rf"^\s+99%\s+{_TIME}").groups()),
        statuses=statuses,
        app_errors=app_errors,
        socket_errors=sockets,
        wrk_non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk(url: str, script: Path, args: list[str], seconds: int, load: Load) -> WrkResult:
    argv = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise TargetFailed(f"wrk exited with {done.returncode}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0].strip()


# -- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str  # chat or feedback
    path: str
    script: Path
    args: list[str] = field(default_factory=list)  # the script's; a tag goes after them
    count: Callable[[], int] | None = None  # rows that this endpoint's writes land in
    counted: str = ""  # what count() counts


@dataclass
class Stored:
    """Rows the writes land in, before and after a measured run."""

    counted: str
    before: int
    after: int
    at_least: int
    at_most: int

    @property
    def grew(self) -> int:
        return self.after - self.before

    @property
    def ok(self) -> bool:
        return self.at_least <= self.grew <= self.at_most


@dataclass
class Row:
    target: str
    endpoint: str
    route: str = ""
    round: int = 0
    result: WrkResult | None = None
    stored: Stored | None = None
    skipped: str | None = None
    failed: str | None = None


def measure(target: str, url: str, endpoint: Endpoint, load: Load, round_: int) -> Row:
    full = url + endpoint.path
    tag = uuid.uuid4().hex[:6]
    if load.warmup:
        wrk(full, endpoint.script, [*endpoint.args, f"w{tag}"], load.warmup, load)
    before = settled(endpoint.count) if endpoint.count else 0
    result = wrk(full, endpoint.script, [*endpoint.args, f"m{tag}"], load.duration, load)
    stored = None
    if endpoint.count:
        sent = result.requests + load.connections + result.socket_error_count
        stored = Stored(endpoint.counted, before, settled(endpoint.count), result.ok, sent)
    row = Row(target, endpoint.name, f"POST {endpoint.path}", round_, result, stored)
    line = (
        f"  {target:10} {endpoint.name:9} {result.ok_rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
        f"p99 {result.p99_ms:7.2f} ms  {result.ok} ok"
    )
    if result.problems():
        line += f"  ERRORS: {result.problems()}"
    if stored:
        verdict = "ok" if stored.ok else "MISMATCH"
        line += f"  {stored.counted} +{stored.grew} ({verdict})"
    print(line, flush=True)
    return row


# -- targets -----------------------------------------------------------------------------


def measure_all(
    target: str, url: str, endpoints: list[Endpoint], load: Load, round_: int
) -> list[Row]:
    rows = []
    for endpoint in endpoints:
        try:
            rows.append(measure(target, url, endpoint, load, round_))
        except (TargetFailed, ValueError, subprocess.TimeoutExpired) as exc:
            print(f"  {target:10} {endpoint.name:9} FAILED: {exc}", flush=True)
            route = f"POST {endpoint.path}"
            rows.append(Row(target, endpoint.name, route, round_, failed=str(exc)))
    return rows


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


def create_runs(url: str, n: int) -> list[str]:
    """``n`` runs through the API, for the feedback to rate."""
    items = [
        {
            "type": "run",
            "id": new_id(),
            "model": "echo",
            "inputs": [{"role": "user", "content": f"question {i}"}],
            "output": f"answer {i}",
            "latency_ms": 12.5,
        }
        for i in range(n)
    ]
    response = httpx.post(f"{url}/api/v1/ingest", json={"items": items}, timeout=120)
    if response.status_code != 200:
        raise TargetFailed(f"creating {n} runs: {response.status_code} {response.text[:500]}")
    return [str(item["id"]) for item in items]


def chat_endpoint(count: Callable[[], int] | None = None, rows: str = "runs") -> Endpoint:
    return Endpoint("chat", "/v1/chat/completions", SCRIPTS / "chat.lua", [], count, rows)


@contextmanager
def bare_target(
    name: str, work: Path, database: Database | None
) -> Iterator[tuple[str, list[Endpoint]]]:
    """The bare app; with a ``database``, the one that commits each body to it first."""
    port = free_port()
    argv = [sys.executable, str(SCRIPTS / "bare.py"), str(port)]
    count: Callable[[], int] | None = None
    rows = ""
    if database is not None:
        argv.append(database.url.removeprefix("sqlite:///"))
        count, rows = (lambda: database.count("requests")), "requests rows"
    # The bare app never looks the run up, so any ids do.
    ids = write_ids(work / "bare_ids.txt", [new_id() for _ in range(RUNS)])
    feedback = Endpoint(
        "feedback", "/api/v1/feedback", SCRIPTS / "feedback.lua", [str(ids)], count, rows
    )
    with child_server(name, argv, port, work) as url:
        yield url, [chat_endpoint(count, rows), feedback]


def serve_has_workers() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "tuneback", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return "--workers" in done.stdout


@contextmanager
def tuneback_target(
    name: str, database: Database, workers: int, work: Path
) -> Iterator[tuple[str, list[Endpoint]]]:
    port = free_port()
    argv = [sys.executable, "-m", "tuneback", "serve", "--model", "echo", "--no-auth"]
    argv += ["--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    env = {"TUNEBACK_DATABASE_URL": database.url, "TUNEBACK_LOG_LEVEL": "warning"}
    settle = WORKER_SETTLE if workers > 1 else 0.0
    with child_server(name, argv, port, work, env=env, cwd=work, settle=settle) as url:
        ids = write_ids(work / f"{name}_runs.txt", create_runs(url, RUNS))
        feedback = Endpoint(
            "feedback",
            "/api/v1/feedback",
            SCRIPTS / "feedback.lua",
            [str(ids)],
            lambda: database.count("feedback"),
            "feedback rows",
        )
        chat = chat_endpoint(lambda: database.count("runs"))
        yield url, [chat, feedback]


def pykoi_python(venv: Path) -> Path:
    """The python of a venv holding pykoi 0.0.11, made on first use; Skipped if it can't be."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('pykoi'))"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.stdout.strip() == PYKOI_VERSION:
            return python
    print(f"  installing pykoi {PYKOI_VERSION} into {venv} ...", flush=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
    )
    if made.returncode != 0:
        raise Skipped(f"python -m venv failed: {(made.stderr or made.stdout).strip()[-300:]}")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        installed = subprocess.run(
            [*pip, f"pykoi=={PYKOI_VERSION}", "httpx<0.28"],
            capture_output=True,
            text=True,
            timeout=1200,
        )
    except subprocess.TimeoutExpired:
        raise Skipped("pip install pykoi took over 20 minutes") from None
    if installed.returncode != 0:
        errors = [line for line in installed.stderr.splitlines() if "ERROR" in line]
        reason = errors[-1] if errors else installed.stderr.strip()[-300:]
        raise Skipped(f"pip install pykoi=={PYKOI_VERSION} failed: {reason}")
    return python


def create_answers(url: str, n: int) -> list[str]:
    """``n`` question-answer rows through pykoi's chat, for the votes."""
    ids = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            answer = client.post(f"/chat/question-{i}").json()
            if answer.get("status") != "200":
                raise TargetFailed(f"pykoi chat failed: {answer}")
            ids.append(str(answer["id"]))
    return ids


@contextmanager
def pykoi_target(venv: Path, work: Path) -> Iterator[tuple[str, list[Endpoint]]]:
    python = pykoi_python(venv)
    home = work / "pykoi"  # pykoi writes qd.db in its working directory
    home.mkdir()
    database = Database(f"sqlite:///{home / 'qd.db'}")
    port = free_port()
    argv = [str(python), str(SCRIPTS / "pykoi_echo.py"), str(port)]
    with child_server("pykoi", argv, port, work, ready="/components", cwd=home) as url:
        ids = write_ids(work / "pykoi_answers.txt", create_answers(url, RUNS))
        chat = Endpoint(
            "chat",
            "/chat/what-is-the-capital-of-france",
            SCRIPTS / "pykoi_chat.lua",
            [],
            lambda: database.count("question_answer"),
            "question_answer rows",
        )
        # A vote updates its answer in place: no row to count.
        vote = Endpoint("feedback", "/chat/qa_table/update", SCRIPTS / "pykoi_vote.lua", [str(ids)])
        yield url, [chat, vote]


@contextmanager
def target(name: str, args: argparse.Namespace, work: Path) -> Iterator[tuple[str, list[Endpoint]]]:
    """A target's server, up until the block ends: its URL and the endpoints to load."""
    if name in ("bare", "bare-sqlite"):
        database = Database(f"sqlite:///{work / 'bare.db'}") if name == "bare-sqlite" else None
        with bare_target(name, work, database) as started:
            yield started
        return
    if name == "pykoi":
        with pykoi_target(args.pykoi_venv, work) as started:
            yield started
        return
    dialect, workers = name.split("-")
    if int(workers) > 1 and not serve_has_workers():
        raise Skipped("serve has no --workers yet")
    if dialect == "sqlite":
        database = Database(f"sqlite:///{work / 'tuneback.db'}")
        with tuneback_target(name, database, 1, work) as started:
            yield started
        return
    with (
        postgres_schema(args.postgres) as database,
        tuneback_target(name, database, int(workers), work) as started,
    ):
        yield started


def start_all(
    names: list[str], args: argparse.Namespace, tmp: Path, stack: ExitStack
) -> tuple[dict[str, tuple[str, list[Endpoint]]], list[Row]]:
    """Every target's server, started one after another and kept up until ``stack`` closes;
    the rows of those skipped or failed."""
    started: dict[str, tuple[str, list[Endpoint]]] = {}
    rows: list[Row] = []
    for name in names:
        work = tmp / name
        work.mkdir()
        print(f"starting {name}", flush=True)
        try:
            started[name] = stack.enter_context(target(name, args, work))
        except Skipped as exc:
            print(f"  skipped: {exc}", flush=True)
            rows.append(Row(name, "-", skipped=str(exc)))
        except TargetFailed as exc:
            print(f"  FAILED: {exc}", flush=True)
            rows.append(Row(name, "-", failed=str(exc)))
    return started, rows


# -- report ------------------------------------------------------------------------------


def measured(rows: list[Row]) -> dict[tuple[str, str], dict[int, WrkResult]]:
    """Each (target, endpoint)'s results by round."""
    found: dict[tuple[str, str], dict[int, WrkResult]] = {}
    for row in rows:
        if row.result is not None:
            found.setdefault((row.target, row.endpoint), {})[row.round] = row.result
    return found


def median_result(results: dict[int, WrkResult]) -> WrkResult:
    """The round with the median req/s (the lower middle one of an even count)."""
    ordered = sorted(results.values(), key=lambda result: result.ok_rps)
    return ordered[(len(ordered) - 1) // 2]


def ratios(over: dict[int, WrkResult], under: dict[int, WrkResult]) -> list[float]:
    """req/s of one target over another's, round by round (each pair ran minutes apart
    at most, while this machine's speed drifts over the hour)."""
    return sorted(
        over[r].ok_rps / under[r].ok_rps for r in over.keys() & under.keys() if under[r].ok_rps
    )


def middle(values: list[float]) -> float:
    """The median of sorted ``values`` (the lower middle one of an even count)."""
    return values[(len(values) - 1) // 2]


def ratio_text(values: list[float]) -> str:
    if not values:
        return "-"
    if values[0] == values[-1]:  # one round, or the ceiling against itself
        return f"{values[0]:.2f}x"
    return f"{middle(values):.2f}x ({values[0]:.2f}-{values[-1]:.2f})"


def table(rows: list[Row]) -> str:
    found = measured(rows)
    lines = [
        "| target | endpoint | req/s | p50 ms | p99 ms | req/s by round | non-2xx "
        "| socket errors | ratio to bare |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for (name, endpoint), results in found.items():
        result = median_result(results)
        by_round = " / ".join(f"{results[r].ok_rps:.0f}" for r in sorted(results))
        non_2xx = sum(r.non_2xx for r in results.values())
        socket_errors = sum(r.socket_error_count for r in results.values())
        bare = found.get(("bare", endpoint), {})
        lines.append(
            f"| {name} | {endpoint} | {result.ok_rps:.0f} | {result.p50_ms:.2f} "
            f"| {result.p99_ms:.2f} | {by_round} | {non_2xx} | {socket_errors} "
            f"| {ratio_text(ratios(results, bare))} |"
        )
    return "\n".join(lines)


def pykoi_table(rows: list[Row]) -> str | None:
    found = measured(rows)
    writes = {
        "chat": (
            "a run with its inputs and output, plus a signed feedback link",
            "one INSERT into question_answer",
        ),
        "feedback": (
            "a new feedback row per user, earlier ones kept as history",
            "one UPDATE of the answer's vote_status, no user, no history",
        ),
    }
    lines = [
        "| endpoint | tuneback sqlite-1 req/s | pykoi req/s | tuneback / pykoi "
        "| tuneback writes | pykoi writes |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for endpoint, (ours, theirs) in writes.items():
        tuneback = found.get(("sqlite-1", endpoint))
        pykoi = found.get(("pykoi", endpoint))
        if tuneback is None or pykoi is None:
            return None
        lines.append(
            f"| {endpoint} | {median_result(tuneback).ok_rps:.0f} "
            f"| {median_result(pykoi).ok_rps:.0f} | {ratio_text(ratios(tuneback, pykoi))} "
            f"| {ours} | {theirs} |"
        )
    return "\n".join(lines)


AIM_OF_BARE = 0.7
AIM_OF_ONE_WORKER = 2.0
AIM_P99_MS = 50.0


def aims_table(rows: list[Row]) -> str | None:
    """Each aim of the write path against what this run measured (median of the rounds)."""
    found = measured(rows)
    lines = ["| aim | endpoint | measured | met |", "| --- | --- | --- | --- |"]

    def add(aim: str, endpoint: str, values: list[float], goal: float) -> None:
        if values:
            met = "yes" if middle(values) >= goal else "no"
            lines.append(f"| {aim} | {endpoint} | {ratio_text(values)} | {met} |")

    for endpoint in ("chat", "feedback"):
        bare = found.get(("bare", endpoint), {})
        for name in ("sqlite-1", "postgres-1"):
            one = found.get((name, endpoint), {})
            add(f"{name} >= {AIM_OF_BARE}x bare", endpoint, ratios(one, bare), AIM_OF_BARE)
        one = found.get(("postgres-1", endpoint), {})
        four = found.get(("postgres-4", endpoint), {})
        add(
            f"postgres-4 >= {AIM_OF_ONE_WORKER:.0f}x postgres-1",
            endpoint,
            ratios(four, one),
            AIM_OF_ONE_WORKER,
        )
        for name in ("sqlite-1", "postgres-1", "postgres-4"):
            results = found.get((name, endpoint))
            if results:
                p99 = median_result(results).p99_ms
                met = "yes" if p99 < AIM_P99_MS else "no"
                lines.append(
                    f"| {name} p99 < {AIM_P99_MS:.0f} ms | {endpoint} | {p99:.1f} ms | {met} |"
                )
    return "\n".join(lines) if len(lines) > 2 else None


def as_json(row: Row) -> dict[str, Any]:
    data = asdict(row)
    if row.result:
        data["result"].update(
            ok=row.result.ok, ok_rps=row.result.ok_rps, non_2xx=row.result.non_2xx
        )
    if row.stored:
        data["stored"].update(grew=row.stored.grew, ok=row.stored.ok)
    return data


def busy_warning(load_average: float) -> str:
    """wrk and the server share this machine's cores: say when something else is busy."""
    cpus = os.cpu_count() or 1
    line = f"{cpus} cores, load average (1 min) {load_average:.2f}"
    if load_average > 0.5:
        line += ": other work is running, so every number here is lower than on a quiet machine"
    return line


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE.parent
    )
    return done.stdout.strip()


def report(rows: list[Row], load: Load, rounds: int, elapsed: float) -> None:
    print(
        f"\nwrk -t{load.threads} -c{load.connections} -d{load.duration}s --latency "
        f"(warm-up {load.warmup}s), {rounds} round(s) over every target; each cell is the\n"
        "round with the median req/s, and each ratio the median of the rounds' ratios\n"
        "(lowest-highest); req/s counts successful answers only, and non-2xx includes\n"
        "the 200 answers in which pykoi says it failed\n"
    )
    print(table(rows))
    comparison = pykoi_table(rows)
    if comparison:
        print("\ntuneback (SQLite, one process) against pykoi (SQLite, one process):\n")
        print(comparison)
    aims = aims_table(rows)
    if aims:
        print("\nthe write path's aims (ratios: median of the rounds, lowest-highest):\n")
        print(aims)
    for row in rows:
        if row.skipped:
            print(f"\n{row.target}: skipped: {row.skipped}")
        if row.failed:
            print(f"\n{row.target}: FAILED: {row.failed}")
        if row.result and row.result.problems():
            print(
                f"\n{row.target} {row.endpoint} (round {row.round}): errors: "
                f"{row.result.problems()}"
            )
    checked = [(r, r.stored, r.result) for r in rows if r.stored and r.result]
    if checked:
        print("\nwrites stored (rows counted in the database around each measured run):")
        for row, s, result in checked:
            print(
                f"  {row.target:10} {row.endpoint:9} round {row.round} {s.counted} +{s.grew} for "
                f"{result.ok} 2xx answers (expected {s.at_least}..{s.at_most}): "
                f"{'ok' if s.ok else 'MISMATCH'}"
            )
    print(f"\nwhole run: {elapsed:.0f}s")


# -- main --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-d", "--duration", type=int, default=6, help="seconds per measured run")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up before each run (0: none)"
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, in order (default: {','.join(TARGETS)})",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TUNEBACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="database in which each postgres target gets a fresh schema",
    )
    parser.add_argument(
        "--pykoi-venv",
        type=Path,
        default=CACHE / "pykoi-venv",
        help="venv holding pykoi, made on first use (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="times every target is measured, taking turns (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args()
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    return args


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    load = Load(args.threads, args.connections, args.duration, args.warmup)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"{wrk_version()}, tuneback at {git_commit()}", flush=True)
    print(busy_warning(load_before), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, ExitStack() as stack:
        # Every server stays up through every round, and each round loads every target
        # in turn: a drift in this machine's speed then reaches all targets alike.
        servers, rows = start_all(args.targets, args, Path(tmp), stack)
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_} of {args.rounds}:", flush=True)
            for name, (url, endpoints) in servers.items():
                rows += measure_all(name, url, endpoints, load, round_)
    elapsed = time.monotonic() - started
    load_after = os.getloadavg()[0]
    report(rows, load, args.rounds, elapsed)
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
                    "wrk": wrk_version(),
                    "commit": git_commit(),
                    "load": asdict(load),
                    "elapsed_s": round(elapsed, 1),
                    "cpus": os.cpu_count(),
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                    "rows": [as_json(r) for r in rows],
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {args.json}")
    bad = any(r.failed or (r.stored and not r.stored.ok) for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
