"""A musicgen model folder from one experiment of train_torch.py: run here, with musicgen.

    .venv/bin/python benchmarks/polyphony_gpu/convert.py .gpu/data.npz OUT/results.json OUT/weights_a.npz \
        norm-256-d0.3 models/bach-voices

The network musicgen.model.build makes for the experiment's settings, given the weights trained on the GPU
(PyTorch's LSTM gates are Keras's, in the same order: input, forget, cell, output; its two biases summed),
saved as a training run saves a model, then scored by musicgen's own `evaluate` on the same validation pieces:
the figure must match the one train_torch.py measured.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicgen.config import ModelConfig, TrainConfig  # noqa: E402
from musicgen.data.datasets import load_data
from musicgen.families import Encoding  # noqa: E402
from musicgen.infra.files import write_json
from musicgen.runs.store import RunFolder


def main(data_path: str, results_path: str, bundle: str, name: str, out: str) -> None:
    from musicgen.learn.evaluate import evaluate
    from musicgen.learn.model import bare_model, build, compile_model

    meta = json.loads(bytes(np.load(data_path)["meta"]).decode())
    result = json.loads(Path(results_path).read_text())[name]
    if result["extra"]:
        raise SystemExit(f"{name} has inputs musicgen's polyphony family does not give ({result['extra']}).")
    enc = Encoding.from_json(meta[result["data"]]["encoding"])
    model = ModelConfig(family="polyphony", preset="default", seq_length=128, units=tuple(result["units"]),
                        dropout=result["dropout"], embedding=32, grid=4, normalize_key=result["data"] == "norm")
    train = TrainConfig(epochs=1, batch_size=256, learning_rate=0.002, patience=4, seed=0,
                        transpose=0 if result["data"] == "norm" else 6)
    net = build(model, enc)
    with np.load(bundle) as z:
        weights = {k.split("|", 1)[1]: z[k].astype(np.float32) for k in z.files if k.startswith(name + "|")}
    for layer in net.layers:
        for w in layer.weights:
            w.assign(weights.pop(f"{layer.name}/{w.name}"))
    if weights:
        raise SystemExit(f"weights left over: {sorted(weights)}")
    compile_model(net, train)
    data = load_data("bach-chorales")
    by_name = {p.name: p for p in data.pieces}
    split = {"train": meta["train_names"], "validation": meta["validation_names"], "test": []}
    run = RunFolder(Path(out))
    run.create(model, train, enc, {
        "dataset": data.name, "pieces": split,
        "notes": {k: int(sum(len(by_name[n].notes) for n in v)) for k, v in split.items()},
        "trained": f"benchmarks/polyphony_gpu/train_torch.py, experiment {name}: {result['seconds']:.0f} s on one "
                   f"GPU, {result['batches']} batches of 256 windows of 128 tokens, "
                   f"{result['train_tokens_seen'] / result['train_tokens']:.0f} passes over the training tokens; "
                   f"the best of its validation scores kept"})
    run.save_best(*bare_model(net))
    heldout = evaluate(out, pieces=[by_name[n] for n in meta["validation_names"]])
    write_json(Path(out) / "heldout.json", heldout)
    run.status("finished", f"Trained on a GPU by benchmarks/polyphony_gpu/train_torch.py ({name}).",
               best_val_loss=result["val_loss"])
    print(f"{name}: evaluate {heldout['loss']['token']:.4f} nats/token, {heldout['loss_per_step']:.4f} per step; "
          f"train_torch.py measured {result['val_loss']:.4f}, {result['val_loss_per_step']:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:6])
