"""The built-in corpora: datasets made from the scores music21 ships (Bach chorales, Essen folk songs), once,
then kept in data/datasets/ like any other."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.config import DEFAULT_TEMPO_QPM
from musicgen.data.folders import Progress, _folder, _locked, _read_meta, _write_meta, dataset_name
from musicgen.data.sources import _run_all, safe_file_name
from musicgen.errors import DatasetError
from musicgen.music.midi import write_midi
from musicgen.music.notes import Notes, Part, TempoMap

BUILD_PARALLEL_FROM = 8  # music21 scores, about 60 ms each


# 6: each file's pitch range; 7: fermatas
BUILTIN_VERSION = 3  # 2: titles in the files; 3: fermatas; an older built-in corpus is made again by `datasets --build`


@dataclass(frozen=True)
class Builtin:
    title: str
    description: str
    source: str  # what music21 ships: 'chorales' or a list of Essen .abc files


BUILTINS = {
    "bach-chorales": Builtin(
        "Bach chorales",
        "371 four-part chorales by J. S. Bach (soprano, alto, tenor, bass), from the music21 corpus.",
        "chorales",
    ),
    "essen-folk": Builtin(
        "German folk songs",
        "629 German folk melodies (altdeu10 and altdeu20) from the Essen Folksong Collection, from the music21 corpus.",
        "essenFolksong/altdeu10 essenFolksong/altdeu20",
    ),
}


DEFAULT_DATASET = "bach-chorales"


def _builtin_tasks(name: str) -> list[tuple[str, str, str, str | None]]:
    """(file name, kind, what to parse, title) for every piece of a built-in corpus."""
    from music21 import corpus as m21corpus

    def work_path(work: str) -> Path:
        found = m21corpus.getWork(work)
        found = found if isinstance(found, list) else [found]
        # 'bach/bwv245.3' also matches bwv245.37, and some works come as both .krn and .mxl
        exact = [Path(p) for p in found if Path(p).stem == Path(work).name] or [Path(p) for p in found]
        return sorted(exact, key=lambda p: p.suffix != ".mxl")[0]

    source = BUILTINS[name].source
    if source == "chorales":
        titles = m21corpus.chorales.ChoraleListRKBWV().byBWV  # by BWV number as text, e.g. '10.7'

        def title(work: str) -> str | None:
            found = titles.get(Path(work).name.removeprefix("bwv"), {}).get("title")
            return f"{found} (BWV {Path(work).name.removeprefix('bwv')})" if found else None

        return [(f"{Path(w).name}.mid", "path", str(work_path(w)), title(w))
                for w in dict.fromkeys(m21corpus.chorales.Iterator(returnType="filename"))]  # it lists some twice
    tasks = []
    for work in source.split():
        path = work_path(work)
        text = path.read_text(encoding="latin-1")
        for tune in re.split(r"\n(?=X:)", text):
            m = re.match(r"X:\s*(\d+)", tune.strip())
            if m:
                t = re.search(r"^T:\s*(.+)$", tune, re.M)
                title = t.group(1).strip() if t else "untitled"
                tasks.append((safe_file_name(f"{path.stem}-{int(m.group(1)):03d} {title}.mid"), "abc", tune.strip(),
                              title))
    return tasks


def _score_parts(task: tuple[str, str, str, str | None]) -> tuple[str, bytes | None, str | None]:
    """One music21 score as MIDI bytes with one track per part, its time and key signature;
    (file name, bytes, error). A pickup bar is padded with rests, so bar lines fall where MIDI expects them."""
    from music21 import converter, expressions, key, meter, tempo

    file_name, kind, what, title = task
    try:
        score = (converter.parse(what, forceSource=True, storePickle=False) if kind == "path"
                 else converter.parse(what, format="abc", forceSource=True))
        flat = score.flatten()
        marks = list(flat.getElementsByClass(tempo.MetronomeMark))
        qpm = float(marks[0].getQuarterBPM() or DEFAULT_TEMPO_QPM) if marks else DEFAULT_TEMPO_QPM
        signatures = list(flat.getElementsByClass(meter.TimeSignature))
        sig = (int(signatures[0].numerator), int(signatures[0].denominator)) if signatures else None
        found = list(flat.getElementsByClass(key.KeySignature))
        keys = ((0.0, int(found[0].sharps), getattr(found[0], "mode", "major") == "minor"),) if found else ()
        voices = list(getattr(score, "parts", None) or [score])
        measures = list(voices[0].getElementsByClass("Measure"))
        pad = float(measures[0].paddingLeft) if measures else 0.0
        meter_rows = ((0.0, *sig),) if sig else ()
        parts, fermatas = [], set()
        for i, part in enumerate(voices):
            rows = []
            for el in part.flatten().stripTies().notes:
                ql = float(el.quarterLength)
                if ql <= 0:
                    continue  # grace notes have no length of their own
                t = float(el.offset) + pad
                rows += [(p.midi, t, t + ql) for p in el.pitches]
                if any(isinstance(x, expressions.Fermata) for x in el.expressions):
                    fermatas.add(round(t * 48) / 48)
            if rows:
                arr = np.array(rows, dtype=np.float64)
                notes = Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], voice=i, tempo_map=TempoMap.constant(qpm),
                                         meter=meter_rows, keys=keys)
                parts.append(Part(part.partName or f"Part {i + 1}", 0, notes))
        if not parts:
            return file_name, None, f"{file_name}: the score has no notes."
        if kind == "abc":  # Essen's K: names only the tonic (K:A over an A-minor tune): the notes' key instead
            keys = ((0.0, *parts[0].notes.key_signature()),)
            parts = [Part(p.name, p.program, p.notes.replace(keys=keys)) for p in parts]
        parts[0] = Part(parts[0].name, parts[0].program, parts[0].notes.replace(fermatas=tuple(sorted(fermatas))))
        return file_name, write_midi(parts, title=title), None
    except Exception as e:  # a score music21 cannot read is skipped, the corpus goes on
        return file_name, None, f"{file_name}: music21 could not read this score ({type(e).__name__})."


def build_builtin(name: str, progress: Progress | None = None, root: Path | None = None,
                  limit: int | None = None) -> Path:
    """Write a built-in corpus as MIDI files under the data folder; `limit` keeps only the first pieces (tests)."""
    key = dataset_name(name)
    if key not in BUILTINS:
        raise DatasetError(f"There is no built-in corpus called '{name}'. Built-in: {', '.join(BUILTINS)}.")
    folder = _folder(key, root)
    with _locked(folder):
        if _read_meta(folder).get("version") == BUILTIN_VERSION:
            return folder
        tasks = _builtin_tasks(key)[:limit]
        results = _run_all(_score_parts, tasks, progress, f"building the {BUILTINS[key].title} corpus",
                           BUILD_PARALLEL_FROM)
        staging = folder.with_name(f".{key}.building")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "midi").mkdir(parents=True)
        for file_name, data, _ in results:
            if data is not None:
                (staging / "midi" / file_name).write_bytes(data)
        skipped = [err for _, _, err in results if err]
        _write_meta(staging, {"name": key, "title": BUILTINS[key].title, "builtin": True, "version": BUILTIN_VERSION,
                              "description": BUILTINS[key].description, "splits": {}, "skipped": skipped})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    return folder
