"""The program's processes: one fork server (preloaded, BLAS on one thread) for jobs and worker pools, and a
helper forked beside a piece of work; signals go only to processes we started."""

from __future__ import annotations

import atexit
import os
import threading
from multiprocessing import context as mp_context
from multiprocessing import popen_forkserver

# imported once by the fork server, so a job starts warm (a fork, not an interpreter and its imports)
PRELOAD = ["numpy", "musicgen.learn.sample", "musicgen.services.preload", "music21", "verovio", "soundfile", "matplotlib.figure"]


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


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


BESIDE_TIMEOUT_S = 300  # a forked helper that has not answered by then is stopped, and the work done here


def _one_thread() -> bool:
    """Whether this process runs a single thread, native ones (BLAS, TensorFlow) counted: only then is a
    fork safe (a lock held by another thread would stay locked in the child for ever)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _beside(work):
    """Start work() in a forked child when this process has one thread (the app's job processes), else run
    it here; returns a function that gives its result."""
    import multiprocessing

    if not _one_thread() or "fork" not in multiprocessing.get_all_start_methods():
        value = work()
        return lambda: value
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_send_result, args=(send, work), daemon=True)
    child.start()
    send.close()

    def result():
        try:
            if not receive.poll(BESIDE_TIMEOUT_S):
                raise EOFError
            value = receive.recv()
        except EOFError:  # the child died or hangs (a crash in a C library): do it here instead
            child.kill()
            value = work()
        child.join()
        if isinstance(value, Exception):
            raise value
        return value

    return result


def _send_result(send, work) -> None:
    try:  # Linux: end with the job that forked us, however it ends
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass
    try:
        send.send(work())
    except Exception as e:  # noqa: BLE001  (raised again in the parent)
        send.send(e)
