"""Cold dashboard load in a real browser on loopback: with gzip, and without it as the baseline.

Each round opens the dashboard in a fresh browser context (an empty cache) and
reads the page's navigation timing: when its load event ended, and when the
charts were drawn (plotly loads after the page). The baseline is the same page
fetched with ``Accept-Encoding: identity``, measured in the same run, so the
ratio shows what compression saves; a warm reload shows what caching saves.

    python bench/bench_pages.py [--rounds 5] [--runs 120]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.analytics.seed import seed
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, serving

from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store

TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const bytes = performance.getEntriesByType("resource").reduce((n, r) => n + r.transferSize, 0);
  return {load: nav.loadEventEnd, bytes: bytes + nav.transferSize};
}"""


def rounds(browser: Browser, url: str, n: int, *, gzip: bool) -> list[dict[str, float]]:
    headers = {} if gzip else {"accept-encoding": "identity"}
    found = []
    for _ in range(n):
        context = browser.new_context(extra_http_headers=headers)
        page = context.new_page()
        page.goto(f"{url}/dashboard?period=all", wait_until="load")
        load = page.evaluate(TIMING)["load"]
        page.wait_for_selector("#chart-volume .main-svg", state="attached", timeout=60_000)
        timing = {**page.evaluate(TIMING), "load": load}
        timing["charts"] = page.evaluate("() => performance.now()")
        page.reload(wait_until="load")
        timing["warm"] = page.evaluate(TIMING)["load"]
        context.close()
        found.append(timing)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/bench.db")
        seed(store, runs=args.runs, project="web")
        with serving(store, ModelCatalog([EchoModel()])) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            rounds(browser, url, 1, gzip=True)  # the first request compresses plotly once
            results = {
                "identity": rounds(browser, url, args.rounds, gzip=False),
                "gzip": rounds(browser, url, args.rounds, gzip=True),
            }
            browser.close()
        store.close()
    print(f"cold dashboard load, median of {args.rounds} fresh contexts (ms; bytes transferred)")
    medians = {}
    for name, found in results.items():
        medians[name] = {k: statistics.median(r[k] for r in found) for k in found[0]}
        m = medians[name]
        print(
            f"  {name:<8} load {m['load']:7.0f}  charts drawn {m['charts']:7.0f}  "
            f"warm reload {m['warm']:6.0f}  {m['bytes'] / 1e6:5.2f} MB"
        )
    ratio = medians["gzip"]["bytes"] / medians["identity"]["bytes"]
    print(f"  gzip sends {ratio:.2f}x the bytes of identity")


if __name__ == "__main__":
    main()
