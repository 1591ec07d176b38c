"""Export the chorales' polyphony tokens for the GPU experiments (train_torch.py): run here, with musicgen.

    .venv/bin/python benchmarks/polyphony_gpu/export.py .gpu/data.npz

Two encodings of the same split (train.split_pieces, seed 0: one tune on one side):
  norm: every piece moved to C major / A minor (the presets' normalize_key);
  keys: pieces in their own keys, each training piece also moved into every key where each voice stays inside
        the lowest and highest notes that voice has in the training pieces (DeepBach's augmentation);
        validation pieces as written, and also moved to C / A minor (to compare with norm on the same music).
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicgen.config import ModelConfig, TrainConfig  # noqa: E402
from musicgen.data.datasets import load_data
from musicgen.data.splits import split_pieces
from musicgen.families import build_encoding, encode, get  # noqa: E402
from musicgen.families.polyphony import FERMATA, STEP
from musicgen.music.grid import key_shift


def pack(rows: list[np.ndarray]) -> dict:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    allrows = np.concatenate(rows)
    return {"tokens": allrows[:, 0].astype(np.int16), "positions": allrows[:, 1].astype(np.int8), "offsets": offsets}


def main(out: str) -> None:
    data = load_data("bach-chorales")
    split = split_pieces(data, TrainConfig().validation_fraction, 0)
    train = [p.notes for p in split["train"]]
    val = [p.notes for p in split["validation"]]
    arrays, meta = {}, {"train_names": [p.name for p in split["train"]],
                        "validation_names": [p.name for p in split["validation"]]}
    for name, normalize in (("norm", True), ("keys", False)):
        cfg = ModelConfig(family="polyphony", seq_length=128, units=(256, 256, 256), embedding=32, grid=4,
                          normalize_key=normalize)
        enc = build_encoding(cfg, train)
        tr = train
        if not normalize:  # every key the voices can sing, as `train --transpose 6` moves them (from -5: 12 keys)
            bounds = get("polyphony").move_bounds(train)
            tr = [n.transposed(s) for n, (lo, hi) in zip(train, bounds) for s in range(-5, 7) if lo <= s <= hi]
            meta["keys_moves_mean"] = len(tr) / len(train)
        enc_json = enc.to_json()
        meta[name] = {"vocab": len(enc.tokens), "positions": enc.positions, "step": enc.index[STEP],
                      "fermata": enc.index.get(FERMATA, -1), "encoding": enc_json,
                      "train_pieces": len(tr)}
        for split_name, tables in (("train", tr), ("val", val)):
            for k, v in pack([encode(enc, n)[0] for n in tables]).items():
                arrays[f"{name}_{split_name}_{k}"] = v
        if not normalize:  # the validation pieces moved to C / A minor, in this vocabulary
            for k, v in pack([encode(enc, n.transposed(key_shift(n)))[0] for n in val]).items():
                arrays[f"{name}_valnorm_{k}"] = v
        print(name, meta[name]["vocab"], "tokens;", len(tr), "training pieces,",
              len(arrays[f"{name}_train_tokens"]), "training tokens", flush=True)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".gpu/data.npz")
