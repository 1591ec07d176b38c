"""The encoding on disk: the same windows as in memory, written once, reread, rewritten when damaged."""

from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from musicgen.data import encoded
from musicgen.families import build_encoding, encode, preset, windows
from musicgen.data import datasets
from musicgen.learn import train


@pytest.fixture
def tables(small_builtins):
    return [p.notes for p in datasets.open_dataset("bach-chorales", root=small_builtins).pieces]


@pytest.mark.parametrize("family,every_step", [("pitch-step-duration", True), ("notes-and-chords", True),
                                               ("notes-and-chords", False), ("polyphony", True)])
def test_windows_drawn_by_index_are_the_windows_made_in_memory(tables, tmp_path, family, every_step):
    model, _ = preset(family)
    enc = build_encoding(model, tables)
    data = encoded.encoded(enc, iter(tables), encoded.fingerprint(enc, tables), tmp_path)
    assert not data.inputs.flags.owndata and data.inputs.base is not None and data.pieces == len(tables)  # mapped
    source = encoded.WindowSource(data, model.seq_length, every_step)
    ref = windows([encode(enc, n) for n in tables], model.seq_length, every_step)
    got = source.all()
    assert len(source) == len(ref.x) > 0
    np.testing.assert_array_equal(got.x, ref.x)
    np.testing.assert_array_equal(got.y, ref.y)
    assert (got.weight is None) == (ref.weight is None)
    if ref.weight is not None:
        np.testing.assert_array_equal(got.weight, ref.weight)
    some = np.array([len(source) - 1, 0, len(source) // 2])  # any order, any subset
    np.testing.assert_array_equal(source.take(some)[0], ref.x[some])


def test_an_encoding_is_written_once_and_rewritten_when_damaged(tables, tmp_path, monkeypatch):
    model, _ = preset("polyphony")
    enc = build_encoding(model, tables)
    key = encoded.fingerprint(enc, tables)
    first = encoded.encoded(enc, tables, key, tmp_path)
    monkeypatch.setattr(encoded, "encode", lambda *a: pytest.fail("encoded again"))
    again = encoded.encoded(enc, tables, key, tmp_path)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    assert encoded.fingerprint(enc, tables[1:]) != key and encoded.fingerprint(enc, tables, "transpose=2") != key
    monkeypatch.undo()
    (tmp_path / "encoded" / key / "offsets.bin").write_bytes(b"\0" * 8)  # half a file
    assert encoded.load(tmp_path / "encoded" / key) is None
    mended = encoded.encoded(enc, tables, key, tmp_path)
    np.testing.assert_array_equal(first.offsets, mended.offsets)
    assert not [p for p in (tmp_path / "encoded").iterdir() if p.name.startswith(".")]  # no half-made folders


def resident_kb(path) -> int:
    """Kilobytes of a mapped file resident in this process (Linux's /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if "-" in line.split()[0] and len(line.split()) >= 5:  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_pages_read_are_handed_back(tmp_path):
    """Reading a whole collection's encoding or notes leaves the process's resident memory as it was."""
    from musicgen.infra.memory import MappedFile

    path = tmp_path / "rows.bin"
    np.arange(2**21, dtype=np.int32).tofile(path)  # 8 MB
    f = MappedFile(path)
    assert int(f.bytes.view(np.int32).sum()) == (2**21 - 1) * 2**20  # every page read
    assert resident_kb(path) >= 8000
    f.release()
    assert resident_kb(path) == 0
    assert int(f.bytes.view(np.int32)[-1]) == 2**21 - 1  # still readable: the page comes back from the file


def test_drawing_windows_keeps_few_pages(tables, tmp_path):
    model, _ = preset("polyphony")
    enc = build_encoding(model, tables)
    data = encoded.encoded(enc, tables, encoded.fingerprint(enc, tables), tmp_path)
    source = encoded.WindowSource(data, model.seq_length, True)
    path = tmp_path / "encoded" / encoded.fingerprint(enc, tables) / "inputs.bin"
    for k in range(encoded.RELEASE_EVERY - 1):
        source.take(np.arange(len(source)))
    assert resident_kb(path) > 0
    source.take(np.arange(len(source)))
    assert resident_kb(path) == 0


def test_preparing_to_train_hands_back_the_notes_it_read(small_builtins, data_dir):
    from musicgen.config import TrainConfig

    data = datasets.open_dataset("bach-chorales", root=small_builtins)
    model, _ = preset("notes-and-chords")
    train.prepare(data, model, TrainConfig())
    cache = small_builtins / "datasets" / "bach-chorales" / "cache.bin"
    assert cache.exists() and resident_kb(cache) == 0
    assert sum(int(p.notes.pitch.sum()) for p in data.pieces) > 0 and resident_kb(cache) > 0  # read: back again


@pytest.mark.parametrize("family,every_step", [("pitch-step-duration", True), ("pitch-step-duration", False),
                                               ("notes-and-chords", True), ("notes-and-chords", False),
                                               ("polyphony", True)])
def test_windows_moved_batch_by_batch_are_those_of_the_moved_pieces(tables, tmp_path, family, every_step):
    """Transposition at batch time: the pieces' own encoding, moved as windows are drawn, gives the windows of
    the moved pieces' encodings, in the same order (the copies are never written)."""
    from musicgen import families
    from musicgen.learn.train import transposed

    model, _ = preset(family)
    model = replace(model, normalize_key=False, min_count=1)
    tables = tables + [tables[0].transposed(40)]  # high up: it moves down only (up would leave the piano)
    bounds = families.get(family).move_bounds(tables)
    enc = build_encoding(model, list(transposed(tables, 2, bounds)))
    copies = list(transposed(tables, 2, bounds))
    ref = encoded.WindowSource(encoded.encoded(enc, copies, encoded.fingerprint(enc, copies), tmp_path),
                               model.seq_length, every_step).all()
    own = encoded.encoded(enc, tables, encoded.fingerprint(enc, tables), tmp_path)
    source = encoded.WindowSource(own, model.seq_length, every_step,
                                  (2, bounds, partial(families.get(family).transpose_rows, enc)))
    assert len(source) == len(ref.x) > len(encoded.WindowSource(own, model.seq_length, every_step))
    got = source.all()
    np.testing.assert_array_equal(got.x, ref.x)
    np.testing.assert_array_equal(got.y, ref.y)
    some = np.array([len(source) - 1, 3, len(source) // 2])
    np.testing.assert_array_equal(source.take(some)[1], ref.y[some])


def test_transposing_with_keys_normalized_is_a_sentence(small_builtins):
    from musicgen.data import datasets
    from musicgen.learn import train
    from musicgen.config import TrainConfig
    from musicgen.errors import ConfigError

    data = datasets.open_dataset("bach-chorales", root=small_builtins)
    model, _ = preset("polyphony")
    with pytest.raises(ConfigError, match="no-normalize-key"):
        train.prepare(data, model, TrainConfig(transpose=2))
