"""Training: split by piece, windows -> tf.data, one training loop under any distribution strategy (one device,
mirrored GPUs, several machines), the run folder written as it goes.

Run it in its own process (python -m musicgen train): the app starts that process and reads the folder.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from musicgen import families
from musicgen.config import ModelConfig, TrainConfig
from musicgen.data.datasets import Dataset, Piece
from musicgen.data.encoded import WindowSource, encoded, fingerprint
from musicgen.data.splits import split_pieces
from musicgen.errors import ConfigError, MusicgenError, TrainingError, storage_error
from musicgen.families import Encoding, build_encoding
from musicgen.learn.evaluate import evaluate
from musicgen.music.notes import Notes
from musicgen.runs.store import (
    RunFolder,
    check_model,
    claim,
    read_configs,
    read_history,
    read_json,
    read_status,
    write_json,
)

STEPS_PER_EXECUTION = 8  # batches per compiled call: small LSTMs on a CPU spend much time between calls
PROGRESS_EVERY_S = 1.0  # how often a progress line goes to history.jsonl within an epoch
VALIDATION_WINDOWS = 4096  # windows of held-out pieces measured after each epoch (all of them at the end)


# ---------------------------------------------------------------- data


@dataclass
class Prepared:
    enc: Encoding
    train: WindowSource  # drawn by index from the encoding on disk
    validation: WindowSource
    split: dict[str, list[Piece]]
    release: object = None  # hands back the pages of the pieces' notes read (Dataset.release_pages)


def prepare(data: Dataset, model: ModelConfig, train: TrainConfig, enc: Encoding | None = None,
            validation_names: list[str] | None = None) -> Prepared:
    """Encoding (learnt from the training pieces unless given) and windows for both splits."""
    split = split_pieces(data, train.validation_fraction, train.seed, validation_names)
    if len(split["train"]) < 1 or len(split["validation"]) < 1:
        raise TrainingError(f"Training needs at least 2 usable pieces (one to learn from, one to check against); "
                            f"'{data.name}' has {len(data.pieces)}.")
    if train.transpose and model.normalize_key:
        raise ConfigError("Moving pieces up and down (transpose) changes nothing when every piece is moved to "
                          "C major / A minor first; turn key normalization off (--no-normalize-key) to train on "
                          "transposed copies.")
    training = [p.notes for p in split["train"]]
    family = families.get(model.family)
    # one pass over the pieces, read a page at a time
    bounds = family.move_bounds(_Tables(training, 0, data.release_pages)) if train.transpose else None
    enc = enc or build_encoding(model, _Tables(training, train.transpose, data.release_pages, bounds))

    def source(tables, moves=None):  # the encoding on disk, a piece at a time; windows drawn from it by index
        tables = _Tables(tables, 0, data.release_pages)
        return WindowSource(encoded(enc, tables, fingerprint(enc, tables)), model.seq_length, model.every_step,
                            moves)

    moves = None
    if train.transpose:  # moved copies are made batch by batch from the pieces' own windows
        moves = (train.transpose, bounds, partial(family.transpose_rows, enc))
    tr = source(training, moves)
    va = source([p.notes for p in split["validation"]])
    if len(tr) < 4:
        raise TrainingError(f"'{data.name}' is too small to train on: it gives {len(tr)} training windows "
                            f"of {model.seq_length} notes. Add pieces or shorten the sequence length.")
    return Prepared(enc, tr, va, split, data.release_pages)


class _Tables:
    """Note tables read from a dataset's mapped cache, then (semitones > 0) their moved copies, made one at a
    time on each pass; a pass hands back the pages it read every RELEASE_EVERY tables, so that a pass over a
    whole collection leaves resident memory as it was."""

    RELEASE_EVERY = 256

    def __init__(self, tables: list[Notes], semitones: int, release, bounds=None):
        self.tables, self.semitones, self.release, self.bounds = tables, semitones, release, bounds

    def __len__(self) -> int:
        return len(self.tables)  # how many pieces (a family's `if pieces`), not how many copies

    def __iter__(self):
        for k, table in enumerate(transposed(self.tables, self.semitones, self.bounds), 1):
            yield table
            if k % self.RELEASE_EVERY == 0:
                self.release()
        self.release()


def transposed(tables: list[Notes], semitones: int, bounds: list[tuple[int, int]]) -> Iterator[Notes]:
    """The tables, then each moved by -semitones..+semitones within its bounds (Family.move_bounds), made one
    at a time as they are used."""
    yield from tables
    for shift in (s for s in range(-semitones, semitones + 1) if s):
        yield from (n.transposed(shift) for n, (lo, hi) in zip(tables, bounds) if len(n) and lo <= shift <= hi)


def _windows(source: WindowSource, batch: int, seed: int, shuffle: bool, limit: int | None = None):
    """The windows as the strategy's replicas take them, for strategy.distribute_datasets_from_function: global
    batches of `batch` windows in a seeded order, each split evenly among the replicas (a worker reads its own
    share only), so the replicas' summed gradients are one process's batch gradient, whatever their number.
    Each batch is gathered from the encoding on disk by index (per-window tf.data ops cost more than the model
    on a CPU), as (inputs, targets, per-step weights: 0 on padding). limit: at most this many windows, a seeded
    sample. Returns (dataset function, batches per epoch)."""
    from musicgen.learn.model import tf

    index = np.arange(len(source), dtype=np.int64)
    if limit is not None and len(index) > limit:
        index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
    batches = -(-len(index) // batch)
    integer = np.issubdtype(source.data.inputs.dtype, np.integer)
    cols, width = source.data.inputs.shape[1], source.data.targets.shape[1]
    steps = (source.seq_length,) if source.every_step else ()

    def fetch(idx):
        x, y, w = source.take(np.maximum(idx, 0))
        w = np.ones(len(idx), np.float32) if w is None else w
        w[idx < 0] = 0  # padding of a last batch shared among replicas
        return x.astype(np.int32 if integer else np.float32), y.astype(np.float32), w

    def shaped(idx):
        x, y, w = tf.numpy_function(fetch, [idx], [tf.int32 if integer else tf.float32, tf.float32, tf.float32],
                                    stateful=False)
        return (tf.ensure_shape(x, (None, source.seq_length, cols)), tf.ensure_shape(y, (None, *steps, width)),
                tf.ensure_shape(w, (None, *steps)))

    def make(ctx):
        share = batch // ctx.num_input_pipelines  # one worker's part of each global batch
        per_replica = ctx.get_per_replica_batch_size(batch)
        first = ctx.input_pipeline_id * share
        order = tf.data.Dataset.from_tensor_slices(index)
        if shuffle:  # the same seed on every worker: the same order everywhere
            order = order.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
        order = order.batch(batch)
        if per_replica != batch:  # a last, short batch is padded (weight 0) so that every replica has its part
            order = order.map(lambda idx: tf.pad(idx, [[0, batch - tf.shape(idx)[0]]], constant_values=-1))
        if share != batch:
            order = order.map(lambda idx: idx[first:first + share])
        if per_replica != share:  # this worker's replicas take its share in turn
            order = order.unbatch().batch(per_replica)
        return order.map(shaped, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    return make, batches


def strategy():
    """Across workers when TF_CONFIG names several (see model.py), mirrored over all GPUs when several are
    visible, the default strategy (one CPU or GPU) otherwise.

    MUSICGEN_LOGICAL_CPUS=N splits the CPU into N logical devices and mirrors over them (for tests).
    """
    from musicgen.learn.model import MULTI_WORKER, tf

    if MULTI_WORKER is not None:
        return MULTI_WORKER
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:  # MUSICGEN_LOGICAL_CPUS, see model.py
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class _Steps:
    """The compiled training and validation steps of one run, under any strategy.

    Keras' fit cannot run across workers (keras-team/keras#20585), so this is the one loop for every case:
    each replica sums its heads' losses over its windows; the loss it differentiates is that sum over the
    weight of the whole global batch, and the optimizer sums the replicas' gradients.
    Figures come back as sums: one per head, then correct first-head guesses, total weight, stop requests.
    """

    def __init__(self, net, strat, heads, loss_weights):
        from musicgen.learn.model import head_loss, tf

        self.net, self.strat, self.heads, self.tf, self.head_loss = net, strat, heads, tf, head_loss
        self.weights = np.asarray(loss_weights[:len(heads)], np.float32)
        self.train = tf.function(lambda iterator, n, stop: self._chunk(iterator, n, stop, self._train_replica))
        self.test = tf.function(lambda iterator, n: self._chunk(iterator, n, 0.0, self._test_replica))

    def _sums(self, x, y, w, training):
        tf = self.tf
        out = self.net(x, training=training)
        sums = [tf.reduce_sum(self.head_loss(head, y[..., k], out[head.name]) * w) for k, head in enumerate(self.heads)]
        first = out[self.heads[0].name]
        correct = tf.cast(tf.equal(tf.argmax(first, -1, output_type=tf.int32), tf.cast(y[..., 0], tf.int32)),
                          tf.float32) if not self.heads[0].regression else tf.zeros_like(w)
        return tf.stack(sums + [tf.reduce_sum(correct * w), tf.reduce_sum(w)])

    def _train_replica(self, x, y, w, stop):
        tf = self.tf
        total = tf.distribute.get_replica_context().all_reduce("SUM", tf.reduce_sum(w))
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            sums = self._sums(x, y, w, True)
            loss = tf.reduce_sum(sums[:len(self.heads)] * self.weights) / tf.maximum(total, 1.0)
        self.net.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.concat([sums, [stop]], 0)

    def _test_replica(self, x, y, w, stop):
        return self.tf.concat([self._sums(x, y, w, False), [stop]], 0)

    def _chunk(self, iterator, n, stop, replica_step):
        """n batches through replica_step on every replica, their figures summed over replicas and batches."""
        tf = self.tf
        sums = tf.zeros(len(self.heads) + 3)
        for _ in tf.range(n):
            x, y, w = next(iterator)
            sums += self.strat.reduce("SUM", self.strat.run(replica_step, (x, y, w, stop)), axis=None)
        return sums

    def run(self, data, batches: int, training: bool, stop: threading.Event | None = None, after=None):
        """One pass over `batches` batches, STEPS_PER_EXECUTION at a time; after(batches done, sums so far)
        is called between them. Returns (sums, stopped): stopped when any worker was asked to stop."""
        tf = self.tf
        iterator, sums, done = iter(data), np.zeros(len(self.heads) + 3), 0
        while done < batches:
            n = tf.constant(min(STEPS_PER_EXECUTION, batches - done))
            if training:
                sums += self.train(iterator, n, tf.constant(1.0 if stop.is_set() else 0.0)).numpy()
            else:
                sums += self.test(iterator, n).numpy()
            done += int(n)
            if after:
                after(done, sums)
            if sums[-1] > 0:
                return sums, True
        return sums, False

    def logs(self, sums, prefix: str = "") -> dict:
        """Keras' names for the figures: loss (weighted over heads), each head's loss, first-head accuracy."""
        weight = max(float(sums[-2]), 1e-9)
        per_head = sums[:len(self.heads)] / weight
        logs = {f"{prefix}loss": float(per_head @ self.weights)}
        if len(self.heads) > 1:
            logs.update({f"{prefix}{h.name}_loss": float(v) for h, v in zip(self.heads, per_head)})
        if not self.heads[0].regression:
            logs[f"{prefix}sparse_categorical_accuracy"] = float(sums[len(self.heads)] / weight)
        return logs


# ---------------------------------------------------------------- the run

class _Tracker:
    """Writes history and status as the run goes, keeps the best model, says when to stop early."""

    def __init__(self, run: RunFolder, total_epochs: int, patience: int, best: float, wait: int, batches: int,
                 progress):
        self.run, self.total, self.patience, self.progress = run, total_epochs, patience, progress
        self.best, self.wait, self.batches = best, wait, batches
        self.epoch, self.batch, self.t0, self.last_line = 0, 0, 0.0, 0.0

    def epoch_begin(self, epoch: int) -> None:
        self.epoch, self.t0 = epoch + 1, time.time()

    def batch_end(self, batch: int, loss: float) -> None:
        self.batch = batch
        now = time.time()
        if now - self.last_line >= PROGRESS_EVERY_S:
            self.last_line = now
            self.run.append({"type": "progress", "epoch": self.epoch, "batch": batch, "batches": self.batches,
                             "loss": loss, "time": now})
        if self.progress:
            self.progress(batch, self.batches, f"epoch {self.epoch}/{self.total}")

    def epoch_end(self, logs: dict, net, stopped: bool) -> bool:
        """Record the epoch and save; True when validation has not improved for `patience` epochs."""
        record = {"type": "epoch", "epoch": self.epoch, **logs, "seconds": round(time.time() - self.t0, 2),
                  "time": time.time()}
        if stopped:
            record["partial"] = True
        val = logs.get("val_loss", math.inf)
        if val < self.best or not (self.run.folder / "weights.npz").exists():
            self.best, self.wait = min(val, self.best), 0
            from musicgen.learn.model import bare_model  # TensorFlow: imported where training runs

            self.run.save_best(*bare_model(net))
        else:
            self.wait += 1
        self.run.save_last(net)
        self.run.append(record)
        if self.progress:
            val_text = f", validation {val:.3f}" if not math.isinf(val) else ""
            self.progress(self.batches, self.batches,
                          f"epoch {self.epoch}/{self.total}: loss {logs.get('loss', math.nan):.3f}{val_text}")
        self.run.status("running", f"{self.epoch} of {self.total} epochs done", epoch=self.epoch, epochs=self.total,
                        best_val_loss=None if math.isinf(self.best) else self.best)
        return self.wait >= self.patience and not stopped


def train(data: Dataset, out: str | os.PathLike, model: ModelConfig, train_cfg: TrainConfig,
          progress=None, stop: threading.Event | None = None, init_from: str | os.PathLike | None = None) -> dict:
    """Train a new model into `out` (or fine-tune the one in init_from on this data); returns the final status."""
    out = Path(out)
    if (out / "config.json").exists():
        raise TrainingError(f"{out} already holds a model. Choose another name, or add --resume to continue it.")
    enc = None
    if init_from is not None:  # a name or a folder; a run stopped before its first epoch has nothing to give
        init_from = check_model(init_from)
        if not (init_from / "model.keras").exists():
            raise TrainingError(f"{init_from.name} has no saved Keras model to fine-tune; train it again.")
        model, _, enc = read_configs(init_from)
    prepared = prepare(data, model, train_cfg, enc)
    claim(out)
    if (out / "config.json").exists():  # another run took the name while this one prepared
        raise TrainingError(f"{out} already holds a model. Choose another name, or add --resume to continue it.")
    run = RunFolder(out)
    run.create(model, train_cfg, prepared.enc, _data_summary(data, prepared))
    run.status("running", "preparing", epoch=0, epochs=train_cfg.epochs)
    return _fit(run, model, train_cfg, prepared, progress, stop or threading.Event(), init_from=init_from)


def resume(out: str | os.PathLike, data: Dataset, progress=None, stop: threading.Event | None = None,
           epochs: int | None = None) -> dict:
    """Continue a stopped run from its last saved epoch, on the same split of the same data."""
    out = Path(out)
    if not (out / "config.json").exists():
        raise TrainingError(f"There is no model called '{out.name}' to resume.")
    claim(out)
    model, train_cfg, enc = read_configs(out)
    status = read_status(out)
    if status["state"] == "running" and status.get("pid") != os.getpid():  # the app may have started us
        raise TrainingError(f"{out.name} is still training.")
    if not (out / "last.keras").exists():
        why = "finished" if status["state"] == "finished" else "has no saved epoch"
        raise TrainingError(f"{out.name} cannot be resumed: it {why}. "
                            "Train a new model, or fine-tune this one with --init.")
    if epochs:
        train_cfg = replace(train_cfg, epochs=epochs)
    summary = read_json(out / "data.json")
    prepared = prepare(data, model, train_cfg, enc, summary["pieces"]["validation"])
    return _fit(RunFolder(out), model, train_cfg, prepared, progress, stop or threading.Event(), resume=True)


def _lost_worker(error, run: RunFolder) -> TrainingError:
    """The sentence for a run across workers that lost one: TensorFlow names the silent task in its message."""
    import re

    found = re.findall(r"/job:worker/replica:\d+/task:(\d+)", error.message)
    who = f"Worker {found[0]}" if found else "Another worker"
    done = len([r for r in read_history(run.folder) if r.get("type") == "epoch"])
    return TrainingError(f"{who} stopped answering (it ended, or the network between the workers failed), so "
                         f"the run stopped after epoch {done}. Resume it on one machine (--resume without "
                         "--workers), or start every worker again with a new --out.")


def _data_summary(data: Dataset, prepared: Prepared) -> dict:
    return {"dataset": data.name,
            "pieces": {k: [p.name for p in v] for k, v in prepared.split.items()},
            "notes": {k: int(sum(len(p.notes) for p in v)) for k, v in prepared.split.items()},
            "windows": {"train": len(prepared.train), "validation": len(prepared.validation)}}


def _fit(run: RunFolder, model_cfg: ModelConfig, train_cfg: TrainConfig, prepared: Prepared, progress,
         stop: threading.Event, resume: bool = False, init_from=None) -> dict:
    from musicgen.config import cluster

    index, workers = cluster()
    if workers:  # TensorFlow's start (importing model.py) waits until every worker has started
        others = ", ".join(w for i, w in enumerate(workers) if i != index)
        run.status("running", f"waiting for the other workers ({others})")
        if progress:
            progress(0, 1, f"waiting for the other workers ({others})")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    main_thread = threading.current_thread() is threading.main_thread()
    if workers and main_thread:  # TensorFlow holds the interpreter while it waits: only the default action works
        for signum in handlers:
            signal.signal(signum, signal.SIG_DFL)
    try:
        from musicgen.learn.model import MULTI_WORKER, build, compile_model, keras, tf
    finally:
        if workers and main_thread:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    try:
        keras.utils.set_random_seed(train_cfg.seed)
        tf.config.experimental.enable_op_determinism()
        strat = strategy()
        replicas = int(strat.num_replicas_in_sync)
        history = [r for r in read_history(run.folder) if r.get("type") == "epoch"] if resume else []
        losses = [r.get("val_loss", math.inf) for r in history]
        best = min(losses, default=math.inf)
        wait = len(losses) - 1 - int(np.argmin(losses)) if losses else 0
        with strat.scope():
            if resume:
                net = keras.models.load_model(run.folder / "last.keras")
            else:
                net = build(model_cfg, prepared.enc)
                if init_from is not None:
                    net.set_weights(keras.models.load_model(Path(init_from) / "model.keras", compile=False)
                                    .get_weights())
                compile_model(net, train_cfg)
            net.optimizer.build(net.trainable_variables)
        batch = max(replicas, train_cfg.batch_size // replicas * replicas)  # shared evenly
        seed = train_cfg.seed
        train_fn, train_batches = _windows(prepared.train, batch, seed, True)
        val_fn, val_batches = _windows(prepared.validation, batch, seed, False, limit=VALIDATION_WINDOWS)
        train_data = strat.distribute_datasets_from_function(train_fn)
        val_data = strat.distribute_datasets_from_function(val_fn)
        steps = _Steps(net, strat, families.get(model_cfg.family).heads(prepared.enc), train_cfg.loss_weights)
        tracker = _Tracker(run, train_cfg.epochs, train_cfg.patience, best, wait, train_batches, progress)
        run.status("running", "training", epochs=train_cfg.epochs, strategy=type(strat).__name__,
                   replicas=replicas)
        stopped = early = False
        for epoch in range(len(history), train_cfg.epochs):
            tracker.epoch_begin(epoch)
            sums, stopped = steps.run(train_data, train_batches, True, stop,
                                      after=lambda done, sums: tracker.batch_end(done, steps.logs(sums)["loss"]))
            logs = steps.logs(sums)
            if val_batches:
                logs.update(steps.logs(steps.run(val_data, val_batches, False)[0], "val_"))
            early = tracker.epoch_end(logs, net, stopped)
            if stopped or early:
                break
    except Exception as e:  # the run folder must say what happened, whatever it was
        if MULTI_WORKER is not None and isinstance(e, tf.errors.OpError):  # a peer's crash aborts the collectives
            e = _lost_worker(e, run)
        message = str(e) if isinstance(e, MusicgenError) else f"Training failed: {type(e).__name__}: {e}"
        try:
            run.status("failed", message)
        except MusicgenError:
            pass  # the disk may be what failed: the sentence still reaches the user below
        if isinstance(e, OSError):
            raise storage_error(run.folder, e) from None
        if isinstance(e, TrainingError):
            raise e from None
        raise
    best_val = None if math.isinf(tracker.best) else tracker.best
    if stopped:
        run.status("stopped", f"Stopped part way through epoch {tracker.epoch}, after {tracker.batch} of "
                   f"{tracker.batches} batches; the model is saved, and Resume goes on from there.",
                   best_val_loss=best_val)
    else:
        why = "stopped early: no better validation loss" if early else "all epochs done"
        (run.folder / "last.keras").unlink(missing_ok=True)  # only a stopped run needs it
        write_json(run.folder / "heldout.json", evaluate(run.folder, pieces=prepared.split["validation"],
                                                         release=prepared.release))
        run.status("finished", f"Finished after {_epochs_done(run.folder)} ({why}).", best_val_loss=best_val)
    return read_status(run.folder)


def _epochs_done(folder: Path) -> str:
    """'5 epochs', or '4 epochs and part of one more' when a stop cut one short (Resume goes on after it)."""
    records = [r for r in read_history(folder) if r.get("type") == "epoch"]
    part = sum(1 for r in records if r.get("partial"))
    full = len(records) - part
    more = "" if not part else " and part of one more" if part == 1 else f" and parts of {part} more"
    return f"{full} epoch{'' if full == 1 else 's'}{more}"


# ---------------------------------------------------------------- held-out figures


# ---------------------------------------------------------------- a run in its own process (for the app)


