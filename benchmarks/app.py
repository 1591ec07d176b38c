"""The app as a user meets it, in headless Chromium: cold start to first page, and Generate to sound and notes.

Run: .venv/bin/python benchmarks/app.py   (uses ./models and ./data, or MUSICGEN_MODELS_DIR / MUSICGEN_DATA_DIR)
Baselines from the same run: an empty Streamlit app's cold start, and a trivial rerun of the Generate page
(the dice button), so the figures read as 'how much slower than Streamlit itself'.
Goals: first page < 8 s, Generate (120 notes) to audio + sheet music < 2 s. The default model counts
length in onsets (notes or chords), so its pieces of length 120 hold about 280 notes.
"""

import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(script: Path):
    p = port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
                             "--server.port", str(p), "--server.address", "127.0.0.1"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{p}"
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.05)


def cold_start(browser, script: Path, ready) -> float:
    """Seconds from launching `streamlit run` to the first page drawn in the browser."""
    t = time.perf_counter()
    proc, url = serve(script)
    page = browser.new_page()
    page.goto(url)
    ready(page)
    elapsed = time.perf_counter() - t
    page.close()
    proc.terminate()
    proc.wait()
    return elapsed


def main():
    from playwright.sync_api import sync_playwright

    empty = Path(tempfile.mkdtemp()) / "empty.py"
    empty.write_text("import streamlit as st\nst.title('hello')\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        base = cold_start(browser, empty, lambda pg: pg.get_by_role("heading", name="hello").wait_for())
        ours = cold_start(browser, ROOT / "app.py", lambda pg: pg.get_by_role("heading", name="musicgen").wait_for())
        print(f"cold start to first page: empty Streamlit app {base:.2f} s (baseline), musicgen {ours:.2f} s "
              f"({ours / base:.1f}x)   goal < 8 s", flush=True)

        proc, url = serve(ROOT / "app.py")
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{url}/")
        page.get_by_role("heading", name="musicgen").wait_for()
        page.goto(f"{url}/generate")
        page.get_by_role("button", name="Generate").wait_for(timeout=60_000)
        times, dice = [], []
        for i in range(3):
            before = page.get_by_label("Seed", exact=True).input_value()
            t = time.perf_counter()
            page.get_by_role("button", name="Roll the dice").click()
            page.wait_for_function(f"() => document.querySelector('input[aria-label=Seed]').value != '{before}'")
            dice.append(time.perf_counter() - t)
            seed = page.get_by_label("Seed", exact=True).input_value()
            t = time.perf_counter()
            page.get_by_role("button", name="Generate").click()
            page.get_by_role("heading", name=re.compile(f"seed {seed}$")).wait_for(timeout=60_000)  # the new piece
            page.locator("audio").first.wait_for()
            page.locator("[data-testid='stImage'] img[src*='svg']").first.wait_for()
            times.append(time.perf_counter() - t)
            notes = page.get_by_text(re.compile(r"^\d+ notes, ")).first.inner_text().split()[0]
        proc.terminate()
        browser.close()
    first, warm = times[0], sorted(times[1:])[0]
    rerun = sorted(dice)[len(dice) // 2]
    print(f"Generate (length 120, the last piece {notes} notes) to audio + sheet music: first click {first:.2f} s, "
          f"then {warm:.2f} s; "
          f"a trivial rerun takes {rerun:.2f} s (baseline, {warm / rerun:.1f}x)   goal < 2 s")


if __name__ == "__main__":
    main()
