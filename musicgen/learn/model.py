"""The Keras 3 model of any family, built from its input columns and heads, and the registered custom loss.
Imports TensorFlow: load it lazily."""

from __future__ import annotations

import os

from musicgen import families
from musicgen.config import ModelConfig, TrainConfig, cluster
from musicgen.errors import TrainingError
from musicgen.families import Encoding
from musicgen.families.base import Head


def _import_quietly():
    """TensorFlow prints start-up chatter on the C-level stderr that no setting silences; it is not for musicians."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import keras
        import tensorflow as tf

        multi_worker = None
        index, workers = cluster()
        if workers:  # TensorFlow insists on it before any op
            try:
                multi_worker = tf.distribute.MultiWorkerMirroredStrategy()
            except tf.errors.OpError as e:
                raise TrainingError(f"This worker cannot listen on {workers[index]} ({e.message}): is another run "
                                    "using that port, or is the address not this machine's?") from None
        n_cpu = int(os.environ.get("MUSICGEN_LOGICAL_CPUS") or 0)
        if n_cpu > 1 and multi_worker is None:  # logical CPUs to test mirrored training; only before the first op
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n_cpu)
        tf.constant(0.0) + 1.0  # the first op prints more; let it print into /dev/null
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return keras, tf, multi_worker


keras, tf, MULTI_WORKER = _import_quietly()  # MULTI_WORKER: the strategy across TF_CONFIG's workers, if any


@keras.saving.register_keras_serializable(package="musicgen")
def mse_with_positive_pressure(y_true, y_pred):
    """The tutorial's loss for step and duration: squared error plus a push away from negative values."""
    mse = (y_true - y_pred) ** 2
    positive_pressure = 10 * keras.ops.maximum(-y_pred, 0.0)
    return keras.ops.mean(mse + positive_pressure, axis=-1)  # per sample, so sample weights can apply


def bare_model(model):
    """(a copy of the model without optimizer state, its weights as numpy arrays): what a run folder keeps."""
    bare = keras.Model.from_config(model.get_config())  # clone_model would copy the optimizer too
    bare.set_weights(model.get_weights())
    return bare, numpy_weights(model)


def head_loss(head: Head, targets, outputs):
    """Per-event loss of one head, the same Head.numpy_loss computes. targets shape=(...) (class numbers or
    values), outputs shape=(..., size)."""
    if head.regression:
        return mse_with_positive_pressure(targets[..., None], outputs)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, tf.int32), outputs)


def build(config: ModelConfig, enc: Encoding) -> keras.Model:
    """Input (batch, seq_length, columns) -> embeddings of the id columns (numbers as they are) -> LSTM stack
    -> one Dense head per family head (logits, or values for regression)."""
    family = families.get(config.family)
    columns = family.columns(config, enc)
    embedded = [c for c in columns if c.size]
    if embedded and len(embedded) != len(columns):
        raise ValueError("a family's input columns are either all ids or all numbers")
    inp = keras.Input((config.seq_length, len(columns)), dtype="int32" if embedded else "float32",
                      name=family.input_name)
    if embedded:
        parts = [keras.layers.Embedding(c.size, c.dim, name=f"embed_{c.name}")(inp[..., i])
                 for i, c in enumerate(columns)]
        x = keras.layers.Concatenate(name="embedded")(parts) if len(parts) > 1 else parts[0]
    else:
        x = inp
    for i, units in enumerate(config.units):
        last = i == len(config.units) - 1
        x = keras.layers.LSTM(units, return_sequences=config.every_step or not last, name=f"lstm_{i}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    if config.dense:
        x = keras.layers.Dense(config.dense, activation="relu", name="dense")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name="dropout_dense")(x)
    outputs = {h.name: keras.layers.Dense(h.size, name=h.name)(x) for h in family.heads(enc)}
    return keras.Model(inp, outputs, name=config.family.replace("-", "_"))


def compile_model(model: keras.Model, train: TrainConfig) -> None:
    """Attach the optimizer (train.py's loop computes the losses), so a stopped run's last.keras keeps its state."""
    optimizer = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax,
                 "rmsprop": keras.optimizers.RMSprop}[train.optimizer](learning_rate=train.learning_rate)
    model.compile(optimizer=optimizer)


def numpy_weights(model: keras.Model) -> dict[str, "np.ndarray"]:  # noqa: F821
    """Every weight the step-wise sampler needs, by layer/weight name, as float32 numpy arrays."""
    out = {}
    for layer in model.layers:
        for w in layer.weights:
            out[f"{layer.name}/{w.name}"] = keras.ops.convert_to_numpy(w.value).astype("float32")
    return out
