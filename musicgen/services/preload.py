"""Imported once by the jobs' fork server (infra/processes.py PRELOAD): draws and engraves a few notes, so every job forks
with fonts, caches and libraries warm (measured here: a process's first piano roll 1.4 s, the next 0.6 s;
its first score 1.4 s, the next 1.1 s)."""

try:
    from musicgen.music.notes import Notes
    from musicgen.render.figures import piano_roll, png
    from musicgen.render.notation import sheet

    _notes = Notes.from_rows([(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 2.0)])
    png(piano_roll(_notes, title="warm"))
    sheet(_notes, "warm")
except Exception:  # noqa: BLE001  (a warm-up that fails only means a slower first piece)
    pass
