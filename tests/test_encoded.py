"""The encoding on disk: the same windows as in memory, written once, reread, rewritten when damaged."""

import numpy as np
import pytest

from musicgen import corpus, encoded
from musicgen.families import build_encoding, encode, preset, windows


@pytest.fixture
def tables(small_builtins):
    return [p.notes for p in corpus.open_dataset("bach-chorales", root=small_builtins).pieces]


@pytest.mark.parametrize("family,every_step", [("pitch-step-duration", True), ("notes-and-chords", True),
                                               ("notes-and-chords", False), ("polyphony", True)])
def test_windows_drawn_by_index_are_the_windows_made_in_memory(tables, tmp_path, family, every_step):
    model, _ = preset(family)
    enc = build_encoding(model, tables)
    data = encoded.encoded(enc, iter(tables), encoded.fingerprint(enc, tables), tmp_path)
    assert isinstance(data.inputs, np.memmap) and data.pieces == len(tables)
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
