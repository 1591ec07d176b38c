"""Training speed and memory of family pitch-step-duration, tutorial preset, on the built-in Bach chorales.

Run: .venv/bin/python benchmarks/train.py [--pieces 100]
- samples/s of this project's training (its own loop, the one that also runs across workers; windows within
  pieces drawn by shuffled index from the encoding on disk, a batch at a time) vs the tutorial's own tf.data
  pipeline with Keras' fit (Dataset.window over all notes, shuffle, batch, cache) and vs the same windows held in
  memory as tensors with fit (this project's training before the encoding moved to disk and before its own
  loop), same model, same notes, same run; timed on the second epoch, after tracing and the tutorial's cache are
  warm;
- peak memory (max RSS) of `python -m musicgen train` on the whole corpus for one epoch.
"""

import argparse
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicgen.data import datasets
from musicgen.families import preset  # noqa: E402


def tutorial_dataset(tf, all_notes: np.ndarray, seq_length: int, batch: int):
    """TensorFlow's music-generation tutorial, create_sequences() and the pipeline around it, as published."""
    key_order = ["pitch", "step", "duration"]
    vocab_size = 128
    notes_ds = tf.data.Dataset.from_tensor_slices(all_notes)
    seq_length = seq_length + 1
    windows = notes_ds.window(seq_length, shift=1, stride=1, drop_remainder=True)
    sequences = windows.flat_map(lambda x: x.batch(seq_length, drop_remainder=True))

    def scale_pitch(x):
        return x / [vocab_size, 1.0, 1.0]

    def split_labels(sequences):
        inputs = sequences[:-1]
        labels_dense = sequences[-1]
        labels = {key: labels_dense[i] for i, key in enumerate(key_order)}
        return scale_pitch(inputs), labels

    seq_ds = sequences.map(split_labels, num_parallel_calls=tf.data.AUTOTUNE)
    n = len(all_notes) - seq_length
    return (seq_ds.shuffle(n).batch(batch, drop_remainder=True).cache().prefetch(tf.data.experimental.AUTOTUNE)), n


def in_memory_dataset(tf, model_cfg, enc, source, batch: int, seed: int):
    """The windows all in memory as tensors, batches gathered by shuffled index (the pipeline before)."""
    from musicgen import families

    w = source.all()
    heads = families.get(model_cfg.family).heads(enc)
    ys = {h.name: w.y[..., k][..., None].astype(np.float32) if h.regression else w.y[..., k].astype(np.int32)
          for k, h in enumerate(heads)}
    x = w.x.astype(np.int32 if np.issubdtype(w.x.dtype, np.integer) else np.float32)
    parts = tf.nest.map_structure(tf.constant, (x, ys) if w.weight is None else
                                  (x, ys, {h.name: w.weight for h in heads}))
    order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch).map(lambda idx: tf.nest.map_structure(lambda t: tf.gather(t, idx), parts),
                                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


class EpochTimer:
    def __init__(self, keras):
        outer = self

        class T(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.times.append(time.perf_counter() - outer.t0)

        self.times, self.callback = [], T()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", type=int, default=100, help="chorales used for the speed comparison")
    args = ap.parse_args()
    from musicgen import families
    from musicgen.families import build_encoding
    from musicgen.learn.model import build, compile_model, keras, mse_with_positive_pressure, tf
    from musicgen.learn.train import _Steps, _windows, prepare

    model_cfg, train_cfg = preset("pitch-step-duration", "tutorial")
    data = datasets.open_dataset("bach-chorales")
    data.pieces = data.pieces[:args.pieces]
    prepared = prepare(data, model_cfg, train_cfg)
    batch = train_cfg.batch_size

    def fit(ds, n_samples, tutorial=False):
        keras.utils.set_random_seed(0)
        net = build(model_cfg, build_encoding(model_cfg, []))
        if tutorial:  # compiled as the tutorial does
            net.compile(loss={"pitch": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              "step": mse_with_positive_pressure, "duration": mse_with_positive_pressure},
                        loss_weights={"pitch": 0.05, "step": 1.0, "duration": 1.0},
                        optimizer=keras.optimizers.Adam(learning_rate=0.005))
        else:  # as the project compiled before its own loop
            net.compile(optimizer=keras.optimizers.Adam(learning_rate=train_cfg.learning_rate),
                        loss={"pitch": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              "step": mse_with_positive_pressure, "duration": mse_with_positive_pressure},
                        loss_weights=dict(zip(("pitch", "step", "duration"), train_cfg.loss_weights)),
                        metrics={"pitch": ["sparse_categorical_accuracy"]}, steps_per_execution=8)
        timer = EpochTimer(keras)
        net.fit(ds, epochs=2, verbose=0, callbacks=[timer.callback], shuffle=False)
        return n_samples / timer.times[-1]

    def ours():  # musicgen.train's loop, as a run uses it
        keras.utils.set_random_seed(0)
        strat = tf.distribute.get_strategy()
        net = build(model_cfg, prepared.enc)
        compile_model(net, train_cfg)
        net.optimizer.build(net.trainable_variables)
        make, batches = _windows(prepared.train, batch, 0, True)
        data = strat.distribute_datasets_from_function(make)
        steps = _Steps(net, strat, families.get(model_cfg.family).heads(prepared.enc), train_cfg.loss_weights)
        for _ in range(2):
            t0 = time.perf_counter()
            steps.run(data, batches, True, threading.Event())
        return len(prepared.train) / (time.perf_counter() - t0)

    ours = ours()
    before = fit(in_memory_dataset(tf, model_cfg, prepared.enc, prepared.train, batch, 0), len(prepared.train))
    # the tutorial's input: the same training pieces' notes end to end, as (pitch, step, duration)
    notes = np.concatenate([np.stack([p.notes.pitch, p.notes.step, p.notes.duration], 1)
                            for p in prepared.split["train"]]).astype(np.float64)
    tut_ds, n = tutorial_dataset(tf, notes, model_cfg.seq_length, batch)
    theirs = fit(tut_ds, n // batch * batch, tutorial=True)
    print(f"pitch-step-duration, tutorial preset, {len(prepared.split['train'])} Bach chorales, batch {batch}")
    print(f"  tutorial tf.data pipeline   {theirs:8.0f} samples/s   (baseline)")
    print(f"  windows in memory (before)  {before:8.0f} samples/s   {before / theirs:5.2f}x")
    print(f"  musicgen (disk, own loop)   {ours:8.0f} samples/s   {ours / theirs:5.2f}x   goal >= 1.0x, "
          f">= the windows in memory ({ours / before:.2f}x)")

    cmd = [sys.executable, "-m", "musicgen", "train", "--data", "bach-chorales", "--family", "pitch-step-duration",
           "--preset", "tutorial", "--epochs", "1", "--out", str(Path(tempfile_dir()) / "bench-model")]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  peak memory, whole corpus, one epoch: {peak:,.0f} MB   goal < 2,048 MB")


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="musicgen-bench-")


if __name__ == "__main__":
    main()
