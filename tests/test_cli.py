"""The CLI as a user runs it: a real process, its output and exit status, never a traceback."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import midi_bytes, scale

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, data_dir=None):
    env = dict(os.environ)
    if data_dir is not None:
        env["MUSICGEN_DATA_DIR"] = str(data_dir)
    r = subprocess.run([sys.executable, "-m", "musicgen", *map(str, args)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_inspect_good_and_bad_files(tmp_path):
    (tmp_path / "good.mid").write_bytes(midi_bytes(scale(count=7)))
    (tmp_path / "text.mid").write_text("hello")
    (tmp_path / "empty.mid").write_bytes(b"")
    r = cli("inspect", tmp_path / "good.mid", tmp_path / "text.mid", tmp_path / "empty.mid", tmp_path / "missing.mid")
    assert r.returncode == 0
    assert r.stdout.count("\n") == 1 and "good.mid: 7 notes" in r.stdout
    errors = r.stderr.splitlines()
    assert f"error: {tmp_path / 'text.mid'}: this is not a MIDI file (MIDI files begin with 'MThd')." in errors
    assert f"error: {tmp_path / 'empty.mid'}: the file is empty (0 bytes)." in errors
    assert any("missing.mid: there is no such file" in e for e in errors)


def test_inspect_nothing_usable_exits_2(tmp_path):
    (tmp_path / "bad.mid").write_bytes(b"MThd")
    r = cli("inspect", tmp_path / "bad.mid")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("error: ")


def test_inspect_folder_and_zip(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.mid").write_bytes(midi_bytes(scale(count=3)))
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("b.mid", midi_bytes(scale(count=4)))
        zf.writestr("notes.txt", "x")
    r = cli("inspect", tmp_path / "dir", tmp_path / "z.zip")
    assert r.returncode == 0
    assert "a.mid: 3 notes" in r.stdout and "z.zip/b.mid: 4 notes" in r.stdout
    assert "notes.txt: skipped, not a MIDI file" in r.stderr


def test_import_then_datasets_then_inspect_by_name(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "a.mid").write_bytes(midi_bytes(scale(count=3)))
    (tmp_path / "b.mid").write_bytes(b"junk")
    r = cli("import", "Class Songs", tmp_path / "a.mid", tmp_path / "b.mid", data_dir=data)
    assert r.returncode == 0
    assert "class-songs: added 1 file" in r.stdout
    assert "b.mid: this is not a MIDI file" in r.stderr
    r = cli("datasets", data_dir=data)
    assert "class-songs" in r.stdout and "1 pieces, 3 notes" in r.stdout.replace("1 piece,", "1 pieces,")
    assert "bach-chorales" in r.stdout and "not built yet" in r.stdout
    r = cli("inspect", "class-songs", data_dir=data)
    assert r.returncode == 0 and "class-songs/a.mid: 3 notes" in r.stdout


def test_import_nothing_usable_is_a_sentence(tmp_path):
    (tmp_path / "b.mid").write_bytes(b"junk")
    r = cli("import", "x", tmp_path / "b.mid", data_dir=tmp_path / "data")
    assert r.returncode == 2
    assert "error: No usable MIDI file was found" in r.stderr


def test_unknown_dataset_is_a_sentence(tmp_path):
    r = cli("inspect", "no-such-set", data_dir=tmp_path / "data")
    assert r.returncode == 2 and "error: There is no dataset called 'no-such-set'" in r.stderr


def test_data_path_never_imports_tensorflow():
    code = ("import importlib, pkgutil, sys, musicgen;"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(musicgen.__path__, 'musicgen.')"
            " if m.name not in ('musicgen.__main__', 'musicgen.learn.model')];"
            "assert 'tensorflow' not in sys.modules and 'streamlit' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_generate_writes_midi_wav_and_musicxml_the_same_for_a_seed(tmp_path):
    models = ROOT / "models"
    for name in ("a", "b"):
        r = cli("generate", "--model", models / "bach-notes", "--length", "30", "--seed", "4",
                "--out", tmp_path / f"{name}.mid", "--wav", tmp_path / f"{name}.wav",
                "--musicxml", tmp_path / f"{name}.musicxml")
        assert r.returncode == 0, r.stderr
        assert "30 notes" in r.stdout
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert (tmp_path / "a.wav").read_bytes()[:4] == b"RIFF"
    assert b"score-partwise" in (tmp_path / "a.musicxml").read_bytes()
    r = cli("inspect", tmp_path / "a.mid")
    assert "a.mid: 30 notes" in r.stdout


def test_generate_without_model_uses_the_default(tmp_path, monkeypatch, small_builtins):
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(ROOT / "models"))
    monkeypatch.setenv("CI", "true")  # pyfluidsynth prints to stdout when CI is set: stdout is ours only
    r = cli("generate", "--length", "16", "--out", tmp_path / "d.mid", "--wav", tmp_path / "d.wav",
            data_dir=small_builtins)
    assert r.returncode == 0 and "model bach-voices, temperature 1.0" in r.stdout  # its sampling.json
    assert r.stdout.count("\n") == 1 and r.stdout.startswith("wrote "), r.stdout


def test_evaluate_with_samples_prints_the_table(small_builtins):
    r = cli("evaluate", "--model", ROOT / "models" / "bach-notes", "--data", "bach-chorales", "--samples", "3",
            "--length", "40", data_dir=small_builtins)
    assert r.returncode == 0, r.stderr
    assert "6 held-out pieces" in r.stdout and "next-pitch accuracy" in r.stdout
    for name in ("pitch_class_entropy", "scale_consistency", "pitch_range", "mean_ioi", "polyphony",
                 "repeated_onsets", "mean_note_length", "note lengths (beats)", "longest copied run"):
        assert name in r.stdout


def test_harmonize_keeps_the_melody_and_the_same_seed_gives_the_same_bytes(tmp_path, tiny_models):
    import numpy as np

    from musicgen.music.midi import read_midi

    tune = [(67, 0.0, 0.6), (69, 0.6, 1.2), (71, 1.2, 1.8), (72, 1.8, 3.0), (71, 3.0, 3.6), (67, 3.6, 4.8)]
    (tmp_path / "tune.mid").write_bytes(midi_bytes(tune, tempo=100))
    for name in ("a", "b"):
        r = cli("harmonize", tmp_path / "tune.mid", "--model", tiny_models / "tiny-poly", "--seed", "3",
                "--voices", "3", "--out", tmp_path / f"{name}.mid", "--wav", tmp_path / f"{name}.wav",
                "--musicxml", tmp_path / f"{name}.musicxml")
        assert r.returncode == 0, r.stderr
        assert "voices; model tiny-poly" in r.stdout
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert (tmp_path / "a.wav").read_bytes()[:4] == b"RIFF" and b"<voice>2</voice>" in (
        tmp_path / "a.musicxml").read_bytes()
    out = read_midi(tmp_path / "a.mid")
    top = out.take(out.voice == 0)
    assert top.pitch.tolist() == [67, 69, 71, 72, 71, 67]
    np.testing.assert_allclose(top.start, [t[1] for t in tune], atol=0.01)
    assert out.voices >= 2


def test_harmonize_and_generate_refuse_bad_outputs_and_settings_before_writing(tmp_path, tiny_models):
    (tmp_path / "tune.mid").write_bytes(midi_bytes(scale(count=6)))
    model = tiny_models / "tiny-poly"
    r = cli("harmonize", tmp_path / "tune.mid", "--model", model, "--out", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
    r = cli("harmonize", tmp_path / "tune.mid", "--model", model, "--out", tmp_path / "x.mid",
            "--wav", tmp_path / "no" / "x.wav")
    assert r.returncode == 2 and "does not exist" in r.stderr and not (tmp_path / "x.mid").exists()
    r = cli("harmonize", tmp_path / "tune.mid", "--model", model, "--out", tmp_path / "x.mid", "--seed", "-1")
    assert r.returncode == 2 and "Seed must be between" in r.stderr
    r = cli("harmonize", tmp_path / "tune.mid", "--model", model, "--out", tmp_path / "x.mid",
            "--temperature", "nan")
    assert r.returncode == 2 and "Temperature must be between" in r.stderr
    r = cli("harmonize", tmp_path / "tune.mid", "--model", tiny_models / "tiny-psd", "--out", tmp_path / "x.mid")
    assert r.returncode == 2 and "cannot harmonize" in r.stderr
    (tmp_path / "silent.mid").write_bytes(b"junk")
    r = cli("harmonize", tmp_path / "silent.mid", "--model", model, "--out", tmp_path / "x.mid")
    assert r.returncode == 2 and "not a MIDI file" in r.stderr
    r = cli("generate", "--model", model, "--out", tmp_path, "--length", "8")
    assert r.returncode == 2 and "is a folder" in r.stderr
    assert not (tmp_path / "x.mid").exists()


def test_polyphonic_melody_uses_its_top_line_and_says_so(tmp_path, tiny_models):
    chords = [(72, 0.0, 1.0), (64, 0.0, 1.0), (74, 1.0, 2.0), (65, 1.0, 2.0)]
    (tmp_path / "chords.mid").write_bytes(midi_bytes(chords))
    r = cli("harmonize", tmp_path / "chords.mid", "--model", tiny_models / "tiny-poly", "--out", tmp_path / "h.mid")
    assert r.returncode == 0, r.stderr
    assert "note: The file has notes sounding together; its top line (2 of 4 notes) is the melody." in r.stderr
