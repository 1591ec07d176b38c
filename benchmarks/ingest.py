"""Ingest speed: this project's MIDI reading (symusic) vs music21's and pretty_midi's, and a cached re-open vs
the first parse.

Run: .venv/bin/python benchmarks/ingest.py [--pieces 50]
Everything is measured in this one run on the same files: the first N Bach chorales written as MIDI.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgen.data import builtins, datasets, sources


def timed(fn, repeat=1):
    """Median wall time of fn() in seconds, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", type=int, default=50)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="musicgen-bench-"))
    builtins.build_builtin("bach-chorales", root=root, limit=args.pieces)
    folder = root / "datasets" / "bach-chorales"
    files = sorted((folder / "midi").iterdir())
    notes = 0

    def ours():
        return sources.parse_files([(f.name, f) for f in files])

    def music21s():
        from music21 import converter

        return [converter.parse(str(f), forceSource=True, storePickle=False) for f in files]

    def pretty_midis():

        return [pretty_midi.PrettyMIDI(str(f)) for f in files]

    import music21  # noqa: F401  (import time is not parse time)
    import pretty_midi  # noqa: F401

    t_ours, tables = timed(ours, repeat=5)
    notes = sum(len(t) for t in tables)
    t_m21, _ = timed(music21s)
    t_pm, _ = timed(pretty_midis, repeat=3)
    def first_open():
        for cache_file in ("cache.json", "cache.bin"):
            (folder / cache_file).unlink(missing_ok=True)
        return datasets.open_dataset("bach-chorales", root=root)  # parses every file and writes the cache

    t_first = timed(first_open, repeat=5)[0]
    data = datasets.open_dataset("bach-chorales", root=root)
    t_cached, again = timed(lambda: datasets.open_dataset("bach-chorales", root=root), repeat=200)
    assert len(again.pieces) == len(data.pieces) == len(files)

    print(f"{len(files)} Bach chorales as MIDI, {notes} notes")
    print(f"music21.converter.parse          {t_m21 * 1000:9.1f} ms   (baseline)")
    print(f"pretty_midi.PrettyMIDI           {t_pm * 1000:9.1f} ms   {t_m21 / t_pm:7.1f}x faster")
    print(f"musicgen read (symusic, beats)   {t_ours * 1000:9.1f} ms   {t_m21 / t_ours:7.1f}x faster, "
          f"{t_pm / t_ours:5.1f}x pretty_midi   goal >= 20x music21")
    print(f"musicgen first open (+cache)     {t_first * 1000:9.1f} ms")
    print(f"musicgen cached re-open          {t_cached * 1000:9.2f} ms   {t_first / t_cached:7.0f}x faster "
          f"than the first open   goal: well under 100 ms")


if __name__ == "__main__":
    main()
