import io
import os
import zipfile

import numpy as np
import pytest
from helpers import midi_bytes, scale

from musicgen.data import builtins, cache, datasets, imports, sources
from musicgen.music.notes import Notes, summarize
from musicgen.errors import DatasetError


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def song(i: int, count=8) -> bytes:
    return midi_bytes(scale(start_pitch=48 + i, count=count))


def test_import_uploads_makes_a_dataset(data_dir):
    report = imports.import_files("My Songs", [("a.mid", song(0)), ("b.midi", song(1, count=5))])
    assert report.name == "my-songs"
    dataset = datasets.open_dataset("my-songs")
    assert dataset.title == "My Songs"
    assert sorted(report.added) == ["a.mid", "b.midi"]
    assert sorted(len(p.notes) for p in dataset.pieces) == [5, 8]
    assert report.summary == summarize([p.notes for p in dataset.pieces])  # from the cache, no table opened
    assert (data_dir / "datasets" / "my-songs" / "midi" / "a.mid").exists()


def test_import_extends_and_skips_duplicates():
    imports.import_files("mine", [("a.mid", song(0))])
    report = imports.import_files("mine", [("a.mid", song(0)), ("a.mid", song(2))])
    assert report.duplicates == 1
    assert report.added == ["a-2.mid"]  # same name, other music: kept under a new name
    assert report.summary == summarize([p.notes for p in datasets.open_dataset("mine").pieces])
    assert report.summary.pieces == 2
    again = imports.import_files("mine", [("b.mid", song(2))])  # nothing new: the summary is still the dataset's
    assert again.added == [] and again.summary == report.summary


def test_import_lists_bad_files_and_keeps_the_good():
    report = imports.import_files("mixed", [("good.mid", song(0)), ("bad.mid", b"not midi"), ("empty.mid", b"")])
    assert report.added == ["good.mid"]
    assert len(report.problems) == 2
    assert any("bad.mid: this is not a MIDI file" in p for p in report.problems)
    assert any("empty.mid: the file is empty" in p for p in report.problems)


def test_nothing_usable_changes_nothing(data_dir):
    imports.import_files("keep", [("a.mid", song(0))])
    before = sorted(os.listdir(data_dir / "datasets" / "keep" / "midi"))
    with pytest.raises(DatasetError, match="No usable MIDI file.*not changed"):
        imports.import_files("keep", [("x.mid", b"garbage")])
    assert sorted(os.listdir(data_dir / "datasets" / "keep" / "midi")) == before
    with pytest.raises(DatasetError):
        imports.import_files("fresh", [("x.txt", b"garbage")])
    assert not (data_dir / "datasets" / "fresh").exists()


def test_dataset_names():
    assert datasets.dataset_name("  Bach & Friends ") == "bach-friends"
    with pytest.raises(DatasetError):
        datasets.dataset_name("../..")
    with pytest.raises(DatasetError, match="built-in"):
        imports.import_files("bach-chorales", [("a.mid", song(0))])


def test_zip_import_is_safe(data_dir):
    z = make_zip({
        "songs/one.mid": song(0),
        "songs/deeper/two.MID": song(1),
        "../escape.mid": song(2),
        "/etc/abs.mid": song(3),
        "readme.txt": b"hello",
        "__MACOSX/songs/._one.mid": b"junk",
    })
    report = imports.import_files("zipped", [("songs.zip", z)])
    assert sorted(report.added) == ["songs__deeper__two.mid", "songs__one.mid"]
    problems = "\n".join(report.problems)
    assert "../escape.mid: skipped, its path points outside" in problems
    assert "/etc/abs.mid: skipped, its path points outside" in problems
    assert "readme.txt: skipped, not a MIDI file" in problems
    assert "MACOSX" not in problems
    written = {p.name for p in (data_dir).rglob("*.mid")}
    assert "escape.mid" not in written and "abs.mid" not in written
    assert not (data_dir.parent / "escape.mid").exists()


def test_zip_member_count_cap(monkeypatch):
    monkeypatch.setattr(sources, "MAX_ZIP_MEMBERS", 3)
    z = make_zip({f"{i}.mid": song(i) for i in range(4)})
    with pytest.raises(DatasetError, match="holds 4 files; the limit is 3"):
        imports.import_files("many", [("many.zip", z)])


def test_zip_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", 10_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.mid", b"MThd" + b"\0" * 50_000)  # compresses to almost nothing
    with pytest.raises(DatasetError, match="would unpack to"):
        imports.import_files("bomb", [("bomb.zip", buf.getvalue())])


def test_zip_member_size_cap(monkeypatch):
    small, big = song(0, 1), song(1, 40)
    monkeypatch.setattr(sources, "MAX_MIDI_BYTES", len(small))
    report = imports.import_files("sizes", [("s.zip", make_zip({"small.mid": small, "big.mid": big}))])
    assert report.added == ["small.mid"]
    assert "big.mid: the file is too large" in "\n".join(report.problems)


def test_damaged_zip():
    with pytest.raises(DatasetError, match="damaged"):
        imports.import_files("broken", [("broken.zip", b"PK\x03\x04" + b"\x00" * 40)])


def test_folder_with_maestro_csv_keeps_splits(tmp_path):
    src = tmp_path / "maestro"
    (src / "2004").mkdir(parents=True)
    (src / "2006").mkdir()
    (src / "2004" / "a.midi").write_bytes(song(0))
    (src / "2004" / "b.midi").write_bytes(song(1))
    (src / "2006" / "c.midi").write_bytes(song(2))
    (src / "maestro-v3.0.0.csv").write_text(
        "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"
        "X,A,train,2004,2004/a.midi,2004/a.wav,2.0\n"
        'X,"B, op. 2",validation,2004,2004/b.midi,2004/b.wav,2.0\n'
        "X,C,test,2006,2006/c.midi,2006/c.wav,2.0\n")
    report = imports.import_files("maestro", [src])
    assert report.summary.pieces == 3
    splits = {p.name: p.split for p in datasets.open_dataset("maestro").pieces}
    assert splits == {"2004__a.midi": "train", "2004__b.midi": "validation", "2006__c.midi": "test"}
    reopened = datasets.open_dataset("maestro")
    assert {p.name: p.split for p in reopened.pieces} == splits


def test_maestro_zip_keeps_splits():
    z = make_zip({"m/m.csv": b"split,midi_filename\ntrain,2004/a.midi\ntest,2004/b.midi\n",
                  "m/2004/a.midi": song(0), "m/2004/b.midi": song(1)})
    imports.import_files("mz", [("m.zip", z)])
    assert {p.name: p.split for p in datasets.open_dataset("mz").pieces} == {"m__2004__a.midi": "train",
                                                                "m__2004__b.midi": "test"}


def test_cache_reopen_does_not_parse(monkeypatch):
    imports.import_files("cached", [(f"{i}.mid", song(i)) for i in range(5)])
    parsed = sources.parse_files([(f"{i}.mid", song(i)) for i in range(5)])
    for module in (cache, datasets):
        monkeypatch.setattr(module, "parse_files", lambda *a, **k: pytest.fail("parsed again"))
    again = datasets.open_dataset("cached")
    assert [p.name for p in again.pieces] == [f"{i}.mid" for i in range(5)]
    for a, b in zip(again.pieces, parsed):
        np.testing.assert_array_equal(a.notes.pitch, b.pitch)
        np.testing.assert_array_equal(a.notes.start, b.start)
        assert a.notes.tempo == b.tempo


def test_a_cached_dataset_is_summed_up_from_its_cache_and_makes_its_notes_on_use(monkeypatch):
    imports.import_files("sums", [(f"{i}.mid", song(i, count=4 + i)) for i in range(4)] + [("x.mid", b"bad")])
    data = datasets.open_dataset("sums")
    made = []
    real = Notes.__init__
    monkeypatch.setattr(Notes, "__init__", lambda self, *a, **k: made.append(1) or real(self, *a, **k))
    summary = data.summary()
    assert not made  # from the cache entries, not the note tables
    assert data.pieces[2].notes.pitch.tolist() == list(range(50, 56)) and made  # made when asked for
    assert summary == summarize([p.notes for p in data.pieces]) and summary.pieces == 4 and summary.notes == 22


def test_cache_notices_changed_and_removed_files(data_dir):
    imports.import_files("changing", [("a.mid", song(0)), ("b.mid", song(1))])
    midi = data_dir / "datasets" / "changing" / "midi"
    (midi / "a.mid").write_bytes(song(0, count=3))
    os.utime(midi / "a.mid", ns=(1, 1))  # a different mtime even on coarse clocks
    (midi / "b.mid").unlink()
    d = datasets.open_dataset("changing")
    assert [(p.name, len(p.notes)) for p in d.pieces] == [("a.mid", 3)]
    info = {i.name: i for i in datasets.list_datasets()}["changing"]  # sizes from the cache's first line
    assert (info.pieces, info.notes, info.seconds) == (1, 3, d.pieces[0].notes.seconds)


def counting_reads(monkeypatch) -> list[str]:
    """The labels of every MIDI file parsed from now on (parsing runs in this process for small counts)."""
    seen, real = [], sources.read_midi

    def read(data, name=None, **kw):
        seen.append(name)
        return real(data, name=name, **kw)

    monkeypatch.setattr(sources, "read_midi", read)
    return seen


def test_an_import_parses_each_file_once_and_adds_to_the_cache_without_reparsing(monkeypatch, data_dir):
    seen = counting_reads(monkeypatch)
    imports.import_files("once", [(f"{i}.mid", song(i)) for i in range(3)])
    assert sorted(seen) == ["0.mid", "1.mid", "2.mid"]  # checked and cached by the same parse
    cache = data_dir / "datasets" / "once" / "cache.bin"
    size = cache.stat().st_size
    seen.clear()
    report = imports.import_files("once", [("3.mid", song(3)), ("4.mid", song(4, count=5))])
    assert sorted(seen) == ["3.mid", "4.mid"]  # the files there before are not read again
    assert cache.stat().st_size == size + 13 * 40  # appended: 13 notes of 40 bytes
    assert (report.summary.pieces, report.summary.notes) == (5, 37)
    assert datasets.is_ready("once")  # the import left its cache current: opening reads no folder again
    d = datasets.open_dataset("once")
    assert sorted(seen) == ["3.mid", "4.mid"]  # opening after the import parses nothing
    assert [(p.name, len(p.notes)) for p in d.pieces] == [
        ("0.mid", 8), ("1.mid", 8), ("2.mid", 8), ("3.mid", 8), ("4.mid", 5)]
    assert isinstance(d.pieces[0].notes.pitch.base, np.ndarray)  # a view of the mapped cache
    np.testing.assert_array_equal(d.pieces[3].notes.pitch, 51 + np.arange(8))


def test_a_half_written_block_is_ignored_and_files_gone_are_compacted_away(monkeypatch, data_dir):
    imports.import_files("gc", [(f"{i}.mid", song(i)) for i in range(4)])
    folder = data_dir / "datasets" / "gc"
    with open(folder / "cache.bin", "ab") as fh:  # a writer that died half-way through a block
        fh.write(b"x" * 100)
    seen = counting_reads(monkeypatch)
    assert len(datasets.open_dataset("gc").pieces) == 4 and not seen
    for i in range(3):
        (folder / "midi" / f"{i}.mid").unlink()
    d = datasets.open_dataset("gc")
    assert [p.name for p in d.pieces] == ["3.mid"] and not seen
    assert (folder / "cache.bin").stat().st_size == 8 * 40  # only the rows of the file still there
    assert d.pieces[0].notes.pitch.tolist() == sources.read_midi(song(3)).pitch.tolist()


def test_corrupt_cache_is_rebuilt(data_dir):
    imports.import_files("c", [("a.mid", song(0))])
    (data_dir / "datasets" / "c" / "cache.bin").write_bytes(b"rubbish")
    assert len(datasets.open_dataset("c").pieces) == 1


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="no dataset called 'nope'"):
        datasets.open_dataset("nope")


def test_delete_dataset(data_dir):
    imports.import_files("gone", [("a.mid", song(0))])
    datasets.delete_dataset("gone")
    assert not (data_dir / "datasets" / "gone").exists()
    with pytest.raises(DatasetError):
        datasets.delete_dataset("bach-chorales")


def test_load_data_from_paths(tmp_path):
    (tmp_path / "a.mid").write_bytes(song(0))
    (tmp_path / "b.mid").write_bytes(b"bad")
    d = datasets.load_data(str(tmp_path))
    assert [len(p.notes) for p in d.pieces] == [8]
    assert len(d.problems) == 1 and "not a MIDI file" in d.problems[0]


def test_parallel_parse_matches_serial(monkeypatch):
    items = [(f"{i}.mid", song(i)) for i in range(6)] + [("bad.mid", b"x")]
    serial = sources.parse_files(items)
    monkeypatch.setattr(sources, "PARSE_PARALLEL_FROM", 2)
    seen = []
    parallel = sources.parse_files(items, progress=lambda done, total, what: seen.append((done, total)))
    assert seen[-1] == (7, 7)
    for a, b in zip(serial, parallel):
        if isinstance(a, str):
            assert a == b
        else:
            np.testing.assert_array_equal(a.pitch, b.pitch)


def test_builtin_corpora_from_music21(small_builtins):
    infos = {i.name: i for i in datasets.list_datasets(small_builtins)}
    assert infos["bach-chorales"].built and infos["essen-folk"].built
    bach = datasets.open_dataset("bach-chorales", root=small_builtins)
    assert len(bach.pieces) == 6 and not bach.problems
    listed = {i.name: i for i in datasets.list_datasets(small_builtins)}["bach-chorales"]  # opened: its cache is made
    assert (listed.pieces, listed.notes) == (6, sum(len(p.notes) for p in bach.pieces))
    first = bach.pieces[0]
    assert first.name.startswith("bwv") and len(first.notes) > 50
    from musicgen.music.midi import read_parts

    assert [p.name for p in read_parts(bach.midi_path(first.name))] == ["Soprano", "Alto", "Tenor", "Bass"]
    # pieces carry their own titles (chorales from music21's list by BWV number, folk songs from ABC's T:)
    assert all(p.title and "(BWV " in p.title for p in bach.pieces), [p.title for p in bach.pieces]
    assert first.label == f"{first.title} ({first.name})"
    folk = datasets.open_dataset("essen-folk", root=small_builtins)
    assert len(folk.pieces) == 6 and all(p.title for p in folk.pieces)
    assert all(p.notes.pitch.min() > 40 for p in folk.pieces)  # melodies, one voice


def test_unbuilt_builtin_is_listed(data_dir):
    infos = {i.name: i for i in datasets.list_datasets()}
    assert set(builtins.BUILTINS) <= set(infos)
    assert not infos["bach-chorales"].built


def test_piece_names_never_become_other_paths(small_builtins):
    bach = datasets.open_dataset("bach-chorales", root=small_builtins)
    with pytest.raises(DatasetError):
        bach.midi_path("../../etc/passwd")


def test_one_bad_source_never_stops_the_good_ones(tmp_path):
    from helpers import midi_bytes, scale

    (tmp_path / "ok.mid").write_bytes(midi_bytes(scale(count=4)))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this zip is damaged")
    (tmp_path / "ok2.mid").write_bytes(midi_bytes(scale(count=5)))
    files, problems = sources.read_sources([tmp_path / "ok.mid", tmp_path / "broken.zip", tmp_path / "ok2.mid"])
    assert [f.relpath for f in files] == ["ok.mid", "ok2.mid"]
    assert len(problems) == 1 and "damaged" in problems[0]
    report = imports.import_files("mixed", [("ok.mid", midi_bytes(scale(count=4))), ("bad.zip", b"PK\x03\x04xx")])
    assert report.added == ["ok.mid"] and any("damaged" in p for p in report.problems)


def test_names_keep_letters_beyond_ascii():
    assert datasets.dataset_name("Müller") != datasets.dataset_name("Mäller")
    assert datasets.dataset_name("  Chorals de Bach ") == "chorals-de-bach"
    assert datasets.dataset_name("../etc") == "etc"


def test_wrong_typed_dataset_files_never_break_listing(tmp_path):
    from helpers import midi_bytes, scale

    imports.import_files("good", [("a.mid", midi_bytes(scale(count=3)))])
    imports.import_files("odd", [("b.mid", midi_bytes(scale(count=3)))])
    odd = datasets.datasets_dir() / "odd"
    (odd / "dataset.json").write_text("[1, 2]")
    (odd / "cache.json").write_text('{"version": 3, "rows": "many", "files": 7}')
    names = [i.name for i in datasets.list_datasets()]
    assert "good" in names
    good = datasets.datasets_dir() / "good"
    (good / "cache.json").write_text("null")
    assert len(datasets.open_dataset("good").pieces) == 1  # the damaged cache is rebuilt


def test_flipped_bytes_in_the_cache_are_detected_and_the_cache_rebuilt():
    from helpers import midi_bytes, scale

    imports.import_files("flip", [("a.mid", midi_bytes(scale(count=6)))])
    cache = datasets.datasets_dir() / "flip" / "cache.bin"
    raw = bytearray(cache.read_bytes())
    raw[10] ^= 0xFF
    cache.write_bytes(bytes(raw))
    piece = datasets.open_dataset("flip").pieces[0]
    assert len(piece.notes) == 6 and piece.notes.seconds < 10


def test_a_dataset_can_be_read_with_the_sustain_pedal():
    import mido
    from helpers import raw_midi

    data = raw_midi([[mido.Message("control_change", control=64, value=127),
                      mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=48),
                      mido.Message("control_change", control=64, value=0, time=144)]])
    imports.import_files("keys", [("a.mid", data)])
    dry = datasets.open_dataset("keys")
    assert dry.pieces[0].notes.end_beat.tolist() == [0.5]
    imports.import_files("keys", [("b.mid", data + b"")], pedal=True)  # same bytes: a duplicate
    wet = datasets.open_dataset("keys")
    assert [p.notes.end_beat.tolist() for p in wet.pieces] == [[2.0]]


def _full_disk_after(monkeypatch, writes: int):
    """Opening a file for writing with Path.open (as write_atomic and Path.write_bytes do) fails with 'No space
    left on device' after `writes` successful openings."""
    import errno
    from pathlib import Path

    real, count = Path.open, [0]

    def open_(self, mode="r", *args, **kwargs):
        if "w" in mode:
            count[0] += 1
            if count[0] > writes:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)


def test_a_full_disk_during_import_leaves_nothing_half_made(monkeypatch):
    from helpers import midi_bytes, scale

    from musicgen.errors import DatasetError

    imports.import_files("full", [("a.mid", midi_bytes(scale(count=3)))])
    before = sorted(p.name for p in (datasets.datasets_dir() / "full").rglob("*"))
    with monkeypatch.context() as m:
        _full_disk_after(m, 1)
        with pytest.raises(DatasetError, match="Nothing was added to 'full': The disk is full"):
            imports.import_files("full", [(f"{k}.mid", midi_bytes(scale(count=3 + k))) for k in range(4)])
    assert sorted(p.name for p in (datasets.datasets_dir() / "full").rglob("*")) == before  # no temp files either
    assert len(datasets.open_dataset("full").pieces) == 1


def test_a_dataset_opens_when_its_cache_cannot_be_written(monkeypatch):
    from helpers import midi_bytes, scale

    imports.import_files("ro", [("a.mid", midi_bytes(scale(count=5)))])
    for f in ("cache.json", "cache.bin"):
        (datasets.datasets_dir() / "ro" / f).unlink()
    _full_disk_after(monkeypatch, 0)
    data = datasets.open_dataset("ro")
    assert len(data.pieces) == 1 and len(data.pieces[0].notes) == 5


def padded_song(i: int, size: int) -> bytes:
    """A real MIDI file of about `size` bytes: a few notes and a long text event (as some notation programs
    write), so it is big without being slow to parse."""
    from helpers import raw_midi
    from mido import Message, MetaMessage

    return raw_midi([[MetaMessage("text", text="x" * size), Message("note_on", note=48 + i % 40, velocity=80),
                      Message("note_off", note=48 + i % 40, time=96)]])


def test_uploads_go_to_disk_in_blocks_and_leave_nothing_behind(data_dir):
    report = imports.import_uploads("up", [("a.mid", io.BytesIO(song(0))),
                                          ("z.zip", io.BytesIO(make_zip({"b.mid": song(1), "c.txt": b"x"})))])
    assert sorted(report.added) == ["a.mid", "b.mid"] and any("c.txt" in p for p in report.problems)
    assert not any((data_dir / "uploads").iterdir())


def test_an_import_holds_one_batch_in_memory_not_the_whole_archive(tmp_path):
    """96 MB of MIDI in a zip, imported with 8-MB batches: the process grows by far less than the archive."""
    import subprocess
    import sys

    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # stored: the zip is as big as its files
        for i in range(24):
            zf.writestr(f"piece{i:02d}.mid", padded_song(i, 4 * 2**20))
    script = f"""
from musicgen.data import imports

def peak():  # VmHWM: the most resident memory since the last reset, in MB
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024

imports.IMPORT_BATCH_BYTES = 8 * 2**20
before = peak()
open("/proc/self/clear_refs", "w").write("5")  # the peak starts again from here
report = imports.import_files("big", [{str(archive)!r}])
open({str(tmp_path / "figures")!r}, "w").write(f"{{len(report.added)}} {{round(peak() - before)}}")
"""
    env = dict(os.environ, MUSICGEN_DATA_DIR=str(tmp_path / "data"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    added, grown = map(int, (tmp_path / "figures").read_text().split())  # not stdout: others may write there
    assert added == 24
    assert grown < 60, f"the import grew by {grown} MB for a 96-MB archive"
