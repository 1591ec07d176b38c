"""A piece of work in a process of its own, with progress, an estimate and Cancel: the page's thread only
polls, so one browser session never stalls another; jobs every session shares, by key."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from musicgen.errors import MusicgenError
from musicgen.infra.files import write_atomic
from musicgen.infra.processes import _process, _signal_group

PROGRESS_EVERY_S = 0.2  # the job writes its progress at most this often
JOB_NICENESS = 5  # added to a job's nice value (and its helper's)
STALE_JOB_S = 24 * 3600  # job folders older than this (a server killed mid-job) are removed


def warm() -> None:
    """Start the fork server (and its imports, a few seconds) in the background, before anyone waits for it."""
    threading.Thread(target=lambda: Job.start(_nothing).result(), daemon=True, name="musicgen-warm").start()


def _nothing(progress=None) -> None:
    return None


def jobs_root() -> Path:
    from musicgen.config import data_dir

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
            write_atomic(out / "progress.json", json.dumps({"fraction": float(fraction), "stage": stage}).encode())

    try:
        value = task(*args, progress=progress)
        write_atomic(out / "result.pkl", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except MusicgenError as e:
        write_atomic(out / "error.txt", str(e).encode())
    except MemoryError:
        write_atomic(out / "error.txt", b"There was not enough memory for this; try a shorter piece.")
    except Exception as e:  # a bug: the user gets a sentence, the details go beside it
        write_atomic(out / "traceback.txt", traceback.format_exc().encode())
        write_atomic(out / "error.txt", f"Something went wrong ({type(e).__name__}: {e}).".encode())



# ---------------------------------------------------------------- the app's tasks


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
