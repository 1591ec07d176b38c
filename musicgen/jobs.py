"""Work the app hands to a process of its own (a piece composed and rendered, a section engraved), with
progress, an estimate and Cancel: the page's thread only polls, so one browser session never stalls another."""

from __future__ import annotations

import atexit
import json
import signal
import os
import pickle
import shutil
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing import context as mp_context
from multiprocessing import popen_forkserver
from pathlib import Path

from .errors import MusicgenError

# imported once by the fork server, so a job starts warm (a fork, not an interpreter and its imports)
PRELOAD = ["numpy", "musicgen.sample", "musicgen.preload", "music21", "verovio", "soundfile", "matplotlib.figure"]
PROGRESS_EVERY_S = 0.2  # the job writes its progress at most this often
JOB_NICENESS = 5  # added to a job's nice value (and its helper's)
STALE_JOB_S = 24 * 3600  # job folders older than this (a server killed mid-job) are removed
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_context = None
_lock = threading.Lock()
_launching = threading.Lock()


class _Popen(popen_forkserver.Popen):
    """The fork server's Popen without the parent's __main__: under Streamlit that is the page being run,
    which the child would run again."""

    def _launch(self, process_obj):
        original = popen_forkserver.spawn.get_preparation_data

        def without_main(name):
            data = original(name)
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
            return data

        with _launching:
            popen_forkserver.spawn.get_preparation_data = without_main
            try:
                super()._launch(process_obj)
            finally:
                popen_forkserver.spawn.get_preparation_data = original


class _Process(mp_context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


class _Context(mp_context.ForkServerContext):
    """multiprocessing's fork server context with our Process: what jobs and worker pools are made with."""

    Process = _Process


def pool_context():
    """Where worker pools come from: a process of one thread (the CLI) forks its workers at once (no server to
    start, no preloads to wait for); forking Streamlit's many threads is unsafe, so the app uses its fork server."""
    if threading.active_count() == 1:
        import multiprocessing

        return multiprocessing.get_context("fork")
    return context()


def context() -> _Context:
    """The one process context of this program: a fork server, started once, with PRELOAD imported and BLAS
    on one thread (a job samples on one anyway, and a one-thread process may fork its helper safely). Jobs and
    the corpus' worker pools share it, so no second server starts without the preloads (or with __main__)."""
    global _context
    with _lock:
        if _context is None:
            from multiprocessing import forkserver

            ctx = _Context()
            ctx.set_forkserver_preload(PRELOAD)
            saved = {k: os.environ.get(k) for k in ONE_THREAD}
            os.environ.update(ONE_THREAD)  # read by the fork server as it starts, then put back
            try:
                forkserver.ensure_running()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            atexit.register(_stop_server)
            _context = ctx
    return _context


def _stop_server() -> None:
    """Stop the fork server as this process ends (it would also go when the last holder of its pipe does)."""
    from multiprocessing import forkserver

    try:
        forkserver._forkserver._stop()
    except (OSError, AttributeError, ChildProcessError):
        pass


def _process(target, args) -> _Process:
    context()
    # not a daemon: it makes its own helper process (the sound, beside the score)
    return _Process(target=target, args=args, daemon=False)


def warm() -> None:
    """Start the fork server (and its imports, a few seconds) in the background, before anyone waits for it."""
    threading.Thread(target=lambda: Job.start(_nothing).result(), daemon=True, name="musicgen-warm").start()


def _nothing(progress=None) -> None:
    return None


MAX_JOB_S = 180  # the longest piece the app makes takes at most this long, by this server's measured pace
SECONDS_PER_EVENT = 0.02  # the pace assumed until a piece has been made here


def length_cap(seconds_per_event: float) -> int:
    """The most events a piece may have to be made within MAX_JOB_S at this pace."""
    return max(8, int(MAX_JOB_S / max(seconds_per_event, 1e-4)))


def jobs_root() -> Path:
    from .config import data_dir

    return data_dir() / "jobs"


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1
    stage: str  # what it is doing, in words
    elapsed: float  # seconds since the start

    @property
    def remaining(self) -> float | None:
        """Seconds still to go, estimated from the pace so far (None until there is a pace)."""
        if self.fraction < 0.05 or self.elapsed < 0.5:
            return None
        return self.elapsed * (1 - self.fraction) / self.fraction


class Job:
    """One piece of work in its own process; the handle is ours, so Cancel never signals anything else."""

    def __init__(self, folder: Path, process):
        self.folder, self.process = folder, process
        self.started = time.monotonic()
        self._result = None

    @classmethod
    def start(cls, task, *args, root: Path | None = None) -> Job:
        """Run task(*args, progress=callback) in a new process; task and args must pickle."""
        root = Path(root) if root is not None else jobs_root()
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale(root)
        folder = root / uuid.uuid4().hex
        folder.mkdir()
        settings = {k: v for k, v in os.environ.items() if k.startswith(SETTINGS_PREFIX)}
        process = _process(_main, (str(folder), task, args, settings))
        process.start()
        return cls(folder, process)

    def progress(self) -> Progress:
        try:
            p = json.loads((self.folder / "progress.json").read_text())
            fraction, stage = float(p["fraction"]), str(p["stage"])
        except (OSError, ValueError, KeyError, TypeError):
            fraction, stage = 0.0, "starting"
        return Progress(min(max(fraction, 0.0), 1.0), stage, time.monotonic() - self.started)

    def done(self) -> bool:
        return self._result is not None or self._answered() or not self.process.is_alive()

    def _answered(self) -> bool:
        """The task's value or sentence is written (whole): it counts as done before its process has ended."""
        return (self.folder / "result.pkl").exists() or (self.folder / "error.txt").exists()

    def result(self):
        """The task's value once done; a MusicgenError with the task's sentence if it failed."""
        if self._result is None:
            if not self._answered():
                self.process.join()
            self._result = self._read()
            shutil.rmtree(self.folder, ignore_errors=True)
        kind, value = self._result
        if kind == "error":
            raise MusicgenError(value)
        return value

    def _read(self) -> tuple[str, object]:
        try:
            return "value", pickle.loads((self.folder / "result.pkl").read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
        try:
            return "error", (self.folder / "error.txt").read_text()
        except OSError:
            return "error", (f"The work stopped before it finished (exit code {self.process.exitcode}); "
                             f"try again, perhaps with a shorter piece.")

    def cancel(self) -> None:
        """Stop the job's process and its helper (ours: the group the job made, led by the process we started
        and have not reaped, so its number is not anyone else's) and forget its files."""
        if self.process.is_alive():
            _signal_group(self.process.pid, signal.SIGTERM)
            self.process.terminate()  # it may not have made its group yet
            self.process.join(5)
        _signal_group(self.process.pid, signal.SIGKILL)  # a helper left behind would keep the fork server alive
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self._result = ("error", "Cancelled.")
        shutil.rmtree(self.folder, ignore_errors=True)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_stale(root: Path) -> None:
    now = time.time()
    for entry in os.scandir(root):
        try:
            if now - entry.stat().st_mtime > STALE_JOB_S:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


SETTINGS_PREFIX = "MUSICGEN_"  # environment variables a job takes from whoever starts it, not from the fork server


def _main(folder: str, task, args, settings: dict) -> None:
    """The job process: runs the task, leaves result.pkl or error.txt (each written whole, then renamed).
    settings: the starter's MUSICGEN_* environment (the fork server's own is as old as the server)."""
    for k in [k for k in os.environ if k.startswith(SETTINGS_PREFIX)]:
        del os.environ[k]
    os.environ.update(settings)
    out = Path(folder)
    last = [0.0]
    os.setpgid(0, 0)  # a group of its own, with its helper: Cancel stops both
    try:
        os.nice(JOB_NICENESS)  # background work: the server's pages come first on a busy machine
    except OSError:
        pass

    def progress(fraction: float, stage: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or fraction >= 1:
            last[0] = now
            _write(out / "progress.json", json.dumps({"fraction": float(fraction), "stage": stage}).encode())

    try:
        value = task(*args, progress=progress)
        _write(out / "result.pkl", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except MusicgenError as e:
        _write(out / "error.txt", str(e).encode())
    except MemoryError:
        _write(out / "error.txt", b"There was not enough memory for this; try a shorter piece.")
    except Exception as e:  # a bug: the user gets a sentence, the details go beside it
        _write(out / "traceback.txt", traceback.format_exc().encode())
        _write(out / "error.txt", f"Something went wrong ({type(e).__name__}: {e}).".encode())


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the app's tasks

@dataclass(frozen=True)
class PieceRequest:
    """A piece to make: from a model, after a primer or under a melody, rendered for the page."""

    model: str  # the model's folder
    sampling: object  # SampleConfig
    title: str
    program: int  # General MIDI instrument of the sound
    primer: object = None  # Notes the piece continues, if any
    melody: object = None  # Notes to harmonize, if any (then primer is None)
    quotes: object = None  # metrics.Quotes of the model's training music, when the asker has them at hand


@dataclass(frozen=True)
class Piece:
    rendered: object  # render.Rendered
    note: str | None  # what the model said about the input, if anything
    model: str  # the model's folder


COMPOSE_SHARE = 0.5  # of the progress bar: composing, then rendering


def make_piece(request: PieceRequest, progress=None) -> Piece:
    from . import render, store
    from .sample import generate, harmonize

    say = progress or (lambda fraction, stage: None)
    say(0.0, "loading the model")
    model = store.load_step_model(request.model)

    def composing(fraction: float) -> None:
        say(COMPOSE_SHARE * fraction, "harmonizing" if request.melody is not None else "composing")

    if request.melody is not None:
        result = harmonize(model, request.melody, request.sampling, progress=composing)
    else:
        quotes = request.quotes
        if quotes is None:
            say(0.0, "reading the model's training music")
            quotes = store.model_quotes(Path(request.model))
        result = generate(model, request.sampling, request.primer, quotes, progress=composing)
    notes, seam = result.notes, None
    if request.primer is not None and result.after is not None:  # the primer plays and engraves too
        notes = request.primer.joined(result.notes, result.after)
        seam = result.after + (float(result.notes.start_beat.min()) if len(result.notes) else 0.0)
    rendered = render.render_all(notes, request.title, request.program,
                                 lambda f, stage: say(COMPOSE_SHARE + (1 - COMPOSE_SHARE) * f, stage), seam)
    say(1.0, "done")
    return Piece(rendered, result.note, request.model)


def make_sheet(notes, title: str, k: int, seam: float | None = None, progress=None):
    from . import render

    (progress or (lambda f, s: None))(0.0, "engraving")
    return render.sheet(notes, title, k, seam)


def open_dataset(name: str, progress=None) -> None:
    """Make a dataset quick to open (build a built-in corpus, parse new files into the cache), in a job: it
    goes on while the pages that asked for it come and go."""
    from . import corpus

    say = progress or (lambda fraction, stage: None)
    say(0.0, "opening the dataset")
    corpus.open_dataset(name, lambda done, total, what: say(done / max(total, 1), f"{what}: {done:,} of {total:,}"))


class Shared:
    """Jobs every session of this process shares, by key (a dataset being built): the first asker starts it,
    later ones follow the same job; a failure is kept, with its sentence, until someone tries again."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.failed: dict[str, str] = {}

    def job(self, key: str, task, *args) -> Job:
        """The running job for key, started now if there is none."""
        with self._lock:
            if key not in self._jobs:
                self._jobs[key] = Job.start(task, *args)
            return self._jobs[key]

    def finish(self, key: str) -> bool:
        """Collect a done job: True when it succeeded, False with its sentence in failed."""
        with self._lock:
            job = self._jobs.pop(key)
        try:
            job.result()
            return True
        except MusicgenError as e:
            self.failed[key] = str(e)
            return False
