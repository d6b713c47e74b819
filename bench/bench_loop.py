"""The closed loop on the bundled model: feedback in, a measurably better model out.

A simulated population with a known preference judges the bundled SmolLM2's
answers, tuneback trains on those judgements, and the tuned model then battles
the base on prompts it never saw, judged by the same people.

The preference (checkable by anyone): **an answer of at most ``--words`` words
(default 40) beats a longer one; between two answers on the same side of that
line, the shorter wins; equal lengths tie.** Words are whitespace-separated.

Stages, each timed:

1. **collect** — for each training prompt the base model (``local``) is sampled
   twice by the battle runner (``services/battles.py``, resample mode, as the
   arena does); the simulated person compares the two answers
   (``POST /api/v1/comparisons``) and rates each one with a thumb, up when it
   keeps to the word limit (``POST /api/v1/feedback``), over HTTP against a real
   server on loopback.
2. **export** — DPO and KTO rows, as ``tuneback export`` writes them.
3. **train** — ``train_model(method, base_model="local")``: LoRA on the CPU,
   merged, written back as ``model.gguf``.
4. **battle** — the tuned GGUF is served beside the base; each held-out prompt
   is answered by both (sides alternate A/B) and judged by the same rule
   through the same API; the win rate comes from the leaderboard service, with
   a Wilson interval on the decisive battles.
5. **speed** — tokens/s of base and tuned through llama.cpp (same prompt, 128
   tokens) and through transformers (the de-quantised base against the trained
   directory).

    python bench/bench_loop.py [--train-prompts 60] [--held-out 40] [--steps 30]

The defaults fit in about a quarter of an hour on two shared cores; the README
has what they measured. At most 264 training and 132 held-out prompts exist.

Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import random
import resource
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tuneback.config import Settings
from tuneback.export import ExportFilters, export_dataset
from tuneback.models import resolve_model
from tuneback.models.local import bundled_model_path
from tuneback.server import create_app
from tuneback.services.battles import run_battle
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.leaderboard import LeaderboardQuery, leaderboard
from tuneback.storage import Store
from tuneback.storage.analytics import wilson
from tuneback.training import TrainingOptions, train_model
from tuneback.training.gguf_files import dequantized_directory

COLLECT, ARENA = "loop", "loop-arena"

SUBJECTS = [
    "photosynthesis", "black holes", "the French Revolution", "volcanoes", "inflation",
    "the immune system", "machine learning", "the water cycle", "plate tectonics", "jazz",
    "the Roman Empire", "climate change", "vaccines", "the internet", "electric cars",
    "honeybees", "the stock market", "sleep", "the moon landing", "coffee", "chess",
    "the Renaissance", "recycling", "earthquakes", "the human heart", "solar panels",
    "democracy", "rainbows", "bread baking", "the Great Wall of China", "gravity",
    "tea", "the printing press", "penguins", "meditation", "cryptography", "the Olympics",
    "glaciers", "antibiotics", "the Silk Road", "hurricanes", "origami", "DNA",
    "the piano", "compound interest", "deserts", "coral reefs", "the telescope",
    "marathons", "volunteering", "public libraries", "wind turbines", "the Amazon rainforest",
    "fermentation", "the Moon's phases", "email", "bicycles", "the Pyramids", "tides",
    "friendship", "gardening", "thunderstorms", "the Nile", "robots", "yoga", "maps",
]  # fmt: skip
TEMPLATES = [
    "What is {}?", "Explain {} to me.", "Tell me about {}.", "Why does {} matter?",
    "How would you describe {} to a child?", "What are some facts about {}?",
]  # fmt: skip
SPEED_PROMPT = "Once upon a time, in a small village by the sea,"


def words(text: str) -> int:
    return len(text.split())


def keeps_rule(text: str, limit: int) -> bool:
    return 0 < words(text) <= limit


def judge(a: str, b: str, limit: int) -> str:
    """The simulated person's verdict on two answers: ``a``, ``b`` or ``tie``."""
    ok_a, ok_b = keeps_rule(a, limit), keeps_rule(b, limit)
    if ok_a != ok_b:
        return "a" if ok_a else "b"
    if words(a) == words(b):
        return "tie"
    return "a" if words(a) < words(b) else "b"


def prompts(count: int, held_out: int, seed: int) -> tuple[list[str], list[str]]:
    """Training and held-out prompts; the held-out ones ask about subjects never trained on."""
    rng = random.Random(seed)
    subjects = SUBJECTS[:]
    rng.shuffle(subjects)
    cut = len(subjects) * 2 // 3
    train = [t.format(s) for s in subjects[:cut] for t in TEMPLATES]
    test = [t.format(s) for s in subjects[cut:] for t in TEMPLATES]
    rng.shuffle(train)
    rng.shuffle(test)
    if count > len(train) or held_out > len(test):
        raise SystemExit(f"at most {len(train)} training and {len(test)} held-out prompts")
    return train[:count], test[:held_out]


@contextmanager
def serving(store: Store, catalog: ModelCatalog) -> Iterator[httpx.Client]:
    """A real server on a free loopback port, in a thread; yields a client for its API."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    settings = Settings(database_url=str(store.url), project=COLLECT, port=port, auth=False)
    app = create_app(settings, store=store, models=catalog, pages=())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    if response.status_code != 201:
        raise SystemExit(f"POST {path}: {response.status_code} {response.text}")


def compare(
    client: httpx.Client, project: str, sides: list[tuple[str, str, str]], limit: int
) -> str:
    """Record the simulated person's verdict on two (run id, model, answer) sides."""
    outcome = judge(sides[0][2], sides[1][2], limit)
    post(
        client,
        "/comparisons",
        {
            "project": project,
            "candidates": [{"run_id": run, "model": model} for run, model, _ in sides],
            "outcome": outcome,
            "user": "simulated",
            "mode": "named",
        },
    )
    return outcome


class Stages:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"-- {name}", flush=True)
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started
        print(f"   {name}: {self.seconds[name]:.0f} s", flush=True)


def collect(store: Store, train: list[str], args: argparse.Namespace) -> tuple[int, int, float]:
    """Sample the base twice per prompt; the population compares and rates the answers."""
    base = resolve_model("local", n_threads=args.threads)
    catalog = ModelCatalog([base])
    catalog.start_loading()
    chat = ChatService(store, catalog)
    options = {"temperature": args.temperature, "max_tokens": args.max_tokens}
    kept = total = 0
    with serving(store, catalog) as client:
        for number, prompt in enumerate(train, 1):
            battle = run_battle(chat, prompt, ["local", "local"], project=COLLECT, options=options)
            sides = [(s.run_id, "local", s.output) for s in battle.sides]
            compare(client, COLLECT, sides, args.words)
            for run_id, _, text in sides:
                good = keeps_rule(text, args.words)
                kept, total = kept + good, total + 1
                post(
                    client,
                    "/feedback",
                    {"run_id": run_id, "key": "thumbs", "value": "up" if good else "down"},
                )
            if number % 20 == 0:
                print(f"   {number}/{len(train)} prompts, {kept}/{total} answers keep the rule")
    return kept, total, kept / total


def battle(
    store: Store, tuned: Path, held_out: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Tuned against base on the held-out prompts, judged by the same rule."""
    tuned_spec = f"gguf:{tuned}"
    catalog = ModelCatalog(
        [resolve_model("local", n_threads=1), resolve_model(tuned_spec, n_threads=1)]
    )
    catalog.start_loading()
    chat = ChatService(store, catalog)
    options = {"temperature": args.temperature, "max_tokens": args.max_tokens}
    kept = {"local": 0, tuned_spec: 0}
    lengths: dict[str, list[int]] = {"local": [], tuned_spec: []}
    with serving(store, catalog) as client:
        for number, prompt in enumerate(held_out):
            order = ["local", tuned_spec] if number % 2 == 0 else [tuned_spec, "local"]
            fight = run_battle(chat, prompt, order, project=ARENA, options=options)
            sides = [(s.run_id, s.model, s.output) for s in fight.sides]
            compare(client, ARENA, sides, args.words)
            for _, model, text in sides:
                kept[model] += keeps_rule(text, args.words)
                lengths[model].append(words(text))
    board = leaderboard(store, project=ARENA, query=LeaderboardQuery(votes="all", rounds=200))
    row = next(r for r in board["models"] if r["model"] == tuned_spec)
    decisive = row["wins"] + row["losses"]
    return {
        "battles": board["battles"],
        "row": row,
        "interval": wilson(row["wins"], decisive),
        "kept": {m: kept[m] / len(held_out) for m in kept},
        "median_words": {m: sorted(v)[len(v) // 2] for m, v in lengths.items()},
        "tuned_spec": tuned_spec,
    }


def llama_speed(path: Path, tokens: int = 128, repeats: int = 3) -> float:
    """Best tokens/s of ``repeats`` greedy runs of ``tokens`` tokens, end of text banned."""
    import llama_cpp

    llm: Any = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    ban = {llm.token_eos(): -1e9}
    best = 0.0
    for _ in range(repeats):
        llm.reset()
        started = time.perf_counter()
        made = llm.create_completion(
            SPEED_PROMPT, max_tokens=tokens, temperature=0, logit_bias=ban
        )["usage"]["completion_tokens"]
        best = max(best, made / (time.perf_counter() - started))
    return best


def transformers_speed(directory: Path, tokens: int = 64) -> float:
    import torch
    import transformers

    torch.set_num_threads(2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(directory)
    model.eval()
    ids = tokenizer(SPEED_PROMPT, return_tensors="pt")["input_ids"]
    best = 0.0
    for _ in range(2):
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, min_new_tokens=tokens, max_new_tokens=tokens, do_sample=False)
        best = max(best, (out.shape[-1] - ids.shape[-1]) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-prompts", type=int, default=60)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--words", type=int, default=40, help="The rule's word limit.")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--method", choices=["dpo", "kto"], default="dpo")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--gguf-type", default="q8_0", choices=["f32", "f16", "q8_0", "q4_1"])
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads to collect.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="Keep the database and model here.")
    args = parser.parse_args()

    train, held_out = prompts(args.train_prompts, args.held_out, args.seed)
    stages = Stages()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        with Store(f"sqlite:///{work / 'loop.db'}") as store:
            with stages.stage("collect"):
                kept, total, before = collect(store, train, args)
            with stages.stage("export"):
                exported = {
                    fmt: export_dataset(
                        store,
                        format=fmt,
                        output=work / "export" / fmt,
                        filters=ExportFilters(project=COLLECT),
                    ).rows_written
                    for fmt in ("dpo", "kto")
                }
            with stages.stage("train"):
                summary = train_model(
                    store,
                    method=args.method,
                    base_model="local",
                    output=work / "tuned",
                    filters=ExportFilters(project=COLLECT),
                    options=TrainingOptions(
                        max_steps=args.steps,
                        batch_size=args.batch_size,
                        learning_rate=args.learning_rate,
                        lora_r=args.lora_r,
                        lora_alpha=2 * args.lora_r,
                        max_length=args.max_length,
                        gguf_type=args.gguf_type,
                        seed=args.seed,
                    ),
                    force=True,
                    on_step=lambda step, steps, loss: print(
                        f"   step {step}/{steps} loss {loss:.4f}", flush=True
                    ),
                    on_status=lambda line: print(f"   {line}", flush=True),
                )
            assert summary.gguf is not None
            with stages.stage("battle"):
                result = battle(store, Path(summary.gguf), held_out, args)
        loop_seconds = time.perf_counter() - started
        with stages.stage("speed"):
            base_directory = dequantized_directory(bundled_model_path())
            speeds = {
                "llama.cpp base (Q4_1)": llama_speed(bundled_model_path()),
                f"llama.cpp tuned ({args.gguf_type})": llama_speed(Path(summary.gguf)),
                "transformers base": transformers_speed(base_directory),
                "transformers tuned": transformers_speed(work / "tuned"),
            }
    report(args, kept, total, before, exported, summary, result, stages, speeds, loop_seconds)


def report(
    args: argparse.Namespace,
    kept: int,
    total: int,
    before: float,
    exported: dict[str, int],
    summary: Any,
    result: dict[str, Any],
    stages: Stages,
    speeds: dict[str, float],
    loop_seconds: float,
) -> None:
    row, tuned = result["row"], result["tuned_spec"]
    low, high = result["interval"] or (0.0, 0.0)
    decisive = row["wins"] + row["losses"]
    print()
    print(f"rule: at most {args.words} words wins; else the shorter answer; equal length ties")
    print(
        f"collect: {args.train_prompts} prompts x 2 samples, {kept}/{total} base answers "
        f"({before:.0%}) keep the rule"
    )
    print(f"export: {exported['dpo']} DPO rows, {exported['kto']} KTO rows")
    print(
        f"train: {summary.method} {summary.steps} steps on {summary.rows} rows, loss "
        f"{summary.first_loss:.3f} -> {summary.last_loss:.3f}, {summary.seconds:.0f} s"
    )
    print(
        f"battle: {result['battles']} held-out battles, tuned {row['wins']} wins, "
        f"{row['losses']} losses, {row['ties']} ties"
    )
    print(
        f"  tuned win rate {row['wins'] / decisive:.1%} of decisive battles "
        f"(95% Wilson {low:.1%}-{high:.1%}); leaderboard win rate (ties half) "
        f"{row['win_rate']:.1%}"
    )
    print(
        f"  keep the rule on held-out prompts: base {result['kept']['local']:.0%}, "
        f"tuned {result['kept'][tuned]:.0%}; median words base "
        f"{result['median_words']['local']}, tuned {result['median_words'][tuned]}"
    )
    print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.seconds.items()))
    print(f"  collect to battle: {loop_seconds / 60:.1f} min")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MiB")
    print("tokens/s: " + ", ".join(f"{k} {v:.1f}" for k, v in speeds.items()))


if __name__ == "__main__":
    main()
