"""The server's memory around large uploads, in a real browser (headless Chromium): four zips of about 190 MB of
MIDI each go through the Dataset page's upload form one after another; the Streamlit server's resident memory
is read from /proc before, after each import, at the end of the session and once Streamlit has dropped the
closed session (server.disconnectedSessionTTL). Baseline, measured in the same run: the server's size after
importing one small file first (that loads the MIDI reader and the libraries of the piece's chart and score
once for the server's life; its size at the very start is printed too). The goal: back within 100 MB of it.
Each import goes to a dataset of its own, so the last import's message never answers for the next.

    .venv/bin/python benchmarks/uploads.py [--uploads 4] [--mb 190] [--ttl 125]   (a temporary data folder)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def resident_mb(pid: int) -> float:
    """Resident memory of the server process itself, in MB."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def where(pid: int) -> str:
    """The server's resident memory by kind of mapping (heap, anonymous maps, files), in MB."""
    kinds: dict[str, int] = {}
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if not line[0].isupper() or not fields[0].endswith(":"):  # a mapping's header line
            name = fields[5] if len(fields) > 5 else ""
            kind = "heap" if name == "[heap]" else "anonymous" if not name else "stack" if "stack" in name else "files"
        elif fields[0] == "Rss:":
            kinds[kind] = kinds.get(kind, 0) + int(fields[1])
    return ", ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(kinds.items()))


def drawn(page) -> None:
    """Wait until the page has drawn everything, down to its last element (a piece's score, sound and notes
    table come after the charts), and a little longer."""
    page.get_by_role("button", name="Download this MIDI file").wait_for(timeout=180_000)
    page.get_by_text("Engraving...").wait_for(state="hidden", timeout=180_000)
    time.sleep(3)


def big_zip(path: Path, megabytes: int, seed: int) -> None:
    """About `megabytes` of real MIDI files (a few notes and a long text event each, 15 MB at most), stored."""
    from helpers import raw_midi
    from mido import Message, MetaMessage

    per, count = 15 * 2**20, max(1, megabytes // 15)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            notes = [Message("note_on", note=40 + (seed * 7 + i) % 50, velocity=80),
                     Message("note_off", note=40 + (seed * 7 + i) % 50, time=96)]
            zf.writestr(f"big{seed}-{i:02d}.mid", raw_midi([[MetaMessage("text", text=f"{seed}-{i}" + "x" * per)]
                                                            + notes]))


def main() -> None:
    import importlib.util
    import shutil

    from playwright.sync_api import sync_playwright
    from test_e2e import CHROMIUM, CHROMIUM_ARGS

    spec = importlib.util.spec_from_file_location("app_benchmark", ROOT / "benchmarks" / "app.py")
    app_benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_benchmark)

    ap = argparse.ArgumentParser()
    ap.add_argument("--uploads", type=int, default=4)
    ap.add_argument("--mb", type=int, default=190)
    ap.add_argument("--ttl", type=int, default=125, help="seconds to wait for Streamlit to drop the closed session")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    zips = []
    small = work / "warm-up.zip"  # one small piece, imported first
    with zipfile.ZipFile(small, "w") as zf:
        from helpers import raw_midi
        from mido import Message
        zf.writestr("small.mid", raw_midi([[Message("note_on", note=60, velocity=80),
                                            Message("note_off", note=60, time=480)]]))
    for k in range(args.uploads):
        zips.append(work / f"upload{k}.zip")
        big_zip(zips[-1], args.mb, k)
    from musicgen.data import builtins, datasets

    datasets.open_dataset(builtins.DEFAULT_DATASET)  # the page opens it first: made here, then copied
    shutil.copytree(datasets.datasets_dir() / builtins.DEFAULT_DATASET, work / "data" / "datasets" / builtins.DEFAULT_DATASET)
    os.environ["MUSICGEN_DATA_DIR"] = str(work / "data")
    proc, url = app_benchmark.serve()
    figures = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{url}/dataset")
            page.get_by_text("Upload MIDI files or a zip").wait_for(timeout=180_000)
            drawn(page)
            cold = resident_mb(proc.pid)
            print(f"before: {where(proc.pid)}", file=sys.stderr, flush=True)
            for k, z in enumerate([small] + zips):
                name_box = page.get_by_role("textbox", name="Dataset name").filter(visible=True)
                if not name_box.count():  # the form stays open after an import
                    page.get_by_text("Upload MIDI files or a zip").click()
                page.locator("input[type='file']").set_input_files(str(z))
                page.get_by_text(z.name, exact=True).wait_for(timeout=600_000)
                name_box.first.fill(f"big{k}")  # its own name: the last import's message never answers for this one
                began = time.perf_counter()
                page.get_by_role("button", name="Import").click()
                page.get_by_text(f"to 'big{k}'").wait_for(timeout=600_000)
                seconds = time.perf_counter() - began
                drawn(page)
                if k == 0:  # the warm-up: the reader, the charts and the score of an imported piece are loaded
                    start = resident_mb(proc.pid)
                    print(f"warm: {where(proc.pid)}", file=sys.stderr, flush=True)
                    continue
                figures.append((z.stat().st_size / 2**20, seconds, resident_mb(proc.pid)))
                print(f"upload {k}: {figures[-1][2]:.0f} MB: {where(proc.pid)}", file=sys.stderr, flush=True)
            page.close()  # the session ends
            browser.close()
        time.sleep(5)
        end = resident_mb(proc.pid)
        print(f"  5 s after the session: {where(proc.pid)}", file=sys.stderr, flush=True)
        time.sleep(args.ttl)  # Streamlit keeps a closed session this long for a reconnect
        gone = resident_mb(proc.pid)
        print(f"  after the session was dropped: {where(proc.pid)}", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"server resident memory at the start: {cold:.0f} MB; after importing one small file (which loads the "
          f"MIDI reader, and the piece's chart and score libraries, once for the server's life): {start:.0f} MB "
          f"(baseline)")
    for k, (mb, seconds, rss) in enumerate(figures, 1):
        print(f"  after upload {k} ({mb:.0f} MB zip, imported in {seconds:.1f} s): {rss:.0f} MB, "
              f"{rss - start:+.0f} MB, {rss / start:.2f}x")
    print(f"  after the session ended: {end:.0f} MB, {end - start:+.0f} MB, {end / start:.2f}x   "
          f"(Streamlit still keeps the closed session)")
    print(f"  once Streamlit dropped the session ({args.ttl} s on): {gone:.0f} MB, {gone - start:+.0f} MB, "
          f"{gone / start:.2f}x   goal: within 100 MB of the start")


if __name__ == "__main__":
    main()
