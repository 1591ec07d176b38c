"""Imported once by the jobs' fork server (jobs.PRELOAD): draws and engraves a few notes, so every job forks
with fonts, caches and libraries warm (measured here: a process's first piano roll 1.4 s, the next 0.6 s;
its first score 1.4 s, the next 1.1 s)."""

try:
    from . import render
    from .midi_io import Notes

    _notes = Notes.from_rows([(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 2.0)])
    render.png(render.piano_roll(_notes, title="warm"))
    render.sheet(_notes, "warm")
except Exception:  # noqa: BLE001  (a warm-up that fails only means a slower first piece)
    pass
