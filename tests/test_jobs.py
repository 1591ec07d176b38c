"""Work in a process of its own: progress, result, a sentence for a failure, Cancel that stops and reaps."""

import os
import time

import pytest

from musicgen.errors import MidiError, MusicgenError
from musicgen.data import datasets
from musicgen.infra import jobs
from musicgen.infra import processes
from musicgen.services import pieces


def counting(n, progress=None):
    for i in range(n):
        progress(i / n, "counting")
        time.sleep(0.01)
    return list(range(n))


def failing(progress=None):
    raise MidiError("This file is not a MIDI file.")


def crashing(progress=None):
    os._exit(3)


def sleeping(progress=None):
    progress(0.5, "sleeping")
    time.sleep(60)


def wait(job, timeout=30):
    end = time.monotonic() + timeout
    while not job.done():
        assert time.monotonic() < end
        time.sleep(0.05)
    return job


def test_a_job_gives_its_value_and_cleans_up(tmp_path):
    job = wait(jobs.Job.start(counting, 30, root=tmp_path))
    assert job.result() == list(range(30)) and job.result() == list(range(30))
    job.process.join(10)
    assert not job.folder.exists() and job.process.exitcode == 0


def slow_to_exit(progress=None):
    import threading

    threading.Thread(target=time.sleep, args=(3,)).start()  # the process ends once this has: after its answer
    return "made"


def test_a_job_is_done_when_its_answer_is_written_not_when_its_process_has_ended(tmp_path):
    job = jobs.Job.start(slow_to_exit, root=tmp_path)
    wait(job, timeout=2.5)
    assert job.process.is_alive() and job.result() == "made"
    job.process.join(10)


def test_a_failure_is_the_task_s_sentence_and_a_crash_a_sentence_too(tmp_path):
    with pytest.raises(MusicgenError, match="not a MIDI file"):
        wait(jobs.Job.start(failing, root=tmp_path)).result()
    with pytest.raises(MusicgenError, match="stopped before it finished"):
        wait(jobs.Job.start(crashing, root=tmp_path)).result()


def test_progress_and_cancel(tmp_path):
    job = jobs.Job.start(sleeping, root=tmp_path)
    end = time.monotonic() + 30
    while job.progress().stage != "sleeping":
        assert time.monotonic() < end
        time.sleep(0.05)
    p = job.progress()
    assert p.fraction == 0.5 and p.elapsed > 0
    job.cancel()
    assert not job.process.is_alive() and job.process.exitcode is not None  # stopped, and reaped
    assert not job.folder.exists()
    with pytest.raises(MusicgenError, match="Cancelled"):
        job.result()


def with_a_helper(marker, progress=None):
    """A job that forks a helper (as rendering does for the sound) and both wait."""
    from musicgen.infra.processes import _beside

    pending = _beside(lambda: time.sleep(60))
    marker.write_text(str(os.getpid()))
    progress(0.5, "waiting")
    pending()


def test_cancel_stops_the_job_and_its_helper(tmp_path):
    """A helper left running would hold the fork server's pipe, so the server would outlive the app."""
    marker = tmp_path / "pid"
    job = jobs.Job.start(with_a_helper, marker, root=tmp_path / "jobs")
    end = time.monotonic() + 30
    while job.progress().stage != "waiting":
        assert time.monotonic() < end
        time.sleep(0.05)
    group = int(marker.read_text())
    members = [p for p in os.listdir("/proc") if p.isdigit() and _group_of(p) == group]
    assert len(members) == 2  # the job and its helper
    job.cancel()
    end = time.monotonic() + 10  # the helper, killed, is reaped by init a moment later
    while [p for p in os.listdir("/proc") if p.isdigit() and _group_of(p) == group]:
        assert time.monotonic() < end, "a process of the cancelled job lives on"
        time.sleep(0.1)


def _group_of(pid: str) -> int | None:
    try:
        return os.getpgid(int(pid))
    except OSError:
        return None


def test_a_piece_is_made_and_rendered_in_a_job(tmp_path, tiny_models, small_builtins, monkeypatch):
    from musicgen.config import SampleConfig

    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(small_builtins))
    request = pieces.PieceRequest(str(tiny_models / "tiny-poly"), SampleConfig(length=16, seed=2), "a title", 0)
    piece = wait(jobs.Job.start(pieces.make_piece, request, root=tmp_path), 120).result()
    r = piece.rendered
    assert r.title == "a title" and len(r.notes) and r.ogg[:4] == b"OggS" and "<svg" in r.sheet.svg
    assert r.midi[:4] == b"MThd" and r.piano_roll_png[:4] == b"\x89PNG"


def test_the_length_cap_follows_the_pace():
    assert pieces.length_cap(0.01) == pieces.MAX_JOB_S * 100
    assert pieces.length_cap(100.0) == 8


@pytest.mark.parametrize("model", ["tiny-poly", "tiny-nc", "tiny-psd"])
def test_a_continuation_plays_and_engraves_after_its_primer(tmp_path, tiny_models, small_builtins, monkeypatch,
                                                            model):
    from musicgen.config import SampleConfig
    from musicgen.render.notation import SEAM_TEXT

    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(small_builtins))
    primer = datasets.open_dataset("bach-chorales").pieces[0].notes.excerpt(0, 24)
    request = pieces.PieceRequest(str(tiny_models / model), SampleConfig(length=12, seed=1), "t", 0, primer=primer)
    r = pieces.make_piece(request).rendered
    assert len(r.notes) > len(primer) and r.seam is not None
    assert r.seam >= primer.start_beat.max() - 1e-6 - 4  # in or after the bar of the primer's last onset
    later = r.notes.start_beat >= r.seam - 1e-6
    assert later.sum() >= len(r.notes) - len(primer)  # the model's notes all come at or after the seam
    assert SEAM_TEXT.encode() in r.sheet.musicxml


def data_folder(progress=None):
    from musicgen.config import data_dir

    return str(data_dir())


def test_a_job_runs_with_its_starters_settings_not_the_fork_servers(tmp_path, monkeypatch):
    processes.context()  # the server is running already, started with other settings
    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(tmp_path / "mine"))
    assert wait(jobs.Job.start(data_folder, root=tmp_path / "jobs")).result() == str(tmp_path / "mine")


def test_a_shared_job_is_started_once_and_keeps_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(tmp_path))
    shared = jobs.Shared()
    first = shared.job("a", counting, 5)
    assert shared.job("a", counting, 5) is first  # a second asker follows the same job
    wait(first)
    assert shared.finish("a") and "a" not in shared.failed
    wait(shared.job("b", failing))
    assert not shared.finish("b") and "not a MIDI file" in shared.failed["b"]


def test_a_page_reads_a_models_training_music_only_when_it_opens_quickly(tiny_models, small_builtins,
                                                                         monkeypatch):
    from musicgen.runs import provenance

    model = tiny_models / "tiny-poly"
    assert not provenance.training_data_ready(model)  # its corpus is not made in this data folder: a job makes it
    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(small_builtins))
    assert provenance.training_data_ready(model) and provenance.model_quotes(model) is not None
    assert provenance.training_data_ready(model.parent / "no-such-model")  # nothing to read: answered at once
