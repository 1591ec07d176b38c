"""Equal-time experiments for the polyphony model on a GPU (PyTorch, cuDNN LSTMs): run on the device machine.

    python3 benchmarks/polyphony_gpu/train_torch.py .gpu/data.npz OUT_DIR SECONDS [NAMES...]

Each experiment trains for the same wall-clock SECONDS, all of them at once (one process each), the network
musicgen.model.build makes for the polyphony family (token and bar-position embeddings, stacked LSTMs, dropout
after each, a softmax over the tokens), on windows drawn at random from the training pieces. Every few seconds
it is scored as musicgen's `evaluate` scores a model: each validation piece run from its start, every token
predicted from all before it; the best weights are kept. Writes results.json and the best weights (float16,
by musicgen's layer names) in weights_*.npz; convert.py makes musicgen model folders of them.
"""

import json
import math
import os
import subprocess
import sys
import time

import numpy as np

EXPERIMENTS = {
    # name: (data, units, dropout, weight decay, recurrent weight drop, extra inputs)
    "norm-256-d0.3": ("norm", (256, 256, 256), 0.3, 0.0, 0.0, ()),
    "keys-256-d0.3": ("keys", (256, 256, 256), 0.3, 0.0, 0.0, ()),
    "norm-256-d0.5": ("norm", (256, 256, 256), 0.5, 0.0, 0.0, ()),
    "norm-256-d0.3-wd": ("norm", (256, 256, 256), 0.3, 0.05, 0.0, ()),
    "norm-512-d0.5": ("norm", (512, 512, 512), 0.5, 0.0, 0.0, ()),
    "norm-256-d0.3-rec0.25": ("norm", (256, 256, 256), 0.3, 0.0, 0.25, ()),
    "norm-256-d0.3-voice": ("norm", (256, 256, 256), 0.3, 0.0, 0.0, ("voice",)),
    "norm-256-d0.3-phrase": ("norm", (256, 256, 256), 0.3, 0.0, 0.0, ("phrase",)),
    # a second round: the two winners of the first together
    "keys-256-d0.3-rec0.25": ("keys", (256, 256, 256), 0.3, 0.0, 0.25, ()),
    "keys-256-d0.3-rec0.4": ("keys", (256, 256, 256), 0.3, 0.0, 0.4, ()),
    "keys-256-d0.2-rec0.25": ("keys", (256, 256, 256), 0.2, 0.0, 0.25, ()),
}
BUNDLES = {"weights_a.npz": ["norm-256-d0.3", "keys-256-d0.3", "norm-256-d0.5", "norm-256-d0.3-wd"],
           "weights_b.npz": ["norm-256-d0.3-rec0.25", "norm-256-d0.3-voice", "norm-256-d0.3-phrase"],
           "weights_c.npz": ["norm-512-d0.5"],
           "weights_d.npz": ["keys-256-d0.3-rec0.25", "keys-256-d0.3-rec0.4", "keys-256-d0.2-rec0.25"]}
SEQ, BATCH, LR, CLIP, EVAL_EVERY = 128, 256, 0.002, 5.0, 8.0  # SEQ: the preset's seq_length
EXTRA = {"voice": 6, "phrase": 17}  # values of each extra input: a note's place in its step; beats since a fermata


def load(path: str, data: str):
    z = np.load(path)
    meta = json.loads(bytes(z["meta"]).decode())

    def pieces(split):
        t, p, o = z[f"{data}_{split}_tokens"], z[f"{data}_{split}_positions"], z[f"{data}_{split}_offsets"]
        return [np.stack([t[a:b], p[a:b]], 1).astype(np.int64) for a, b in zip(o[:-1], o[1:])]

    out = {"train": pieces("train"), "val": pieces("val")}
    if f"{data}_valnorm_tokens" in z:
        out["valnorm"] = pieces("valnorm")
    return meta, meta[data], out


def extras(rows: np.ndarray, step: int, fermata: int, which) -> np.ndarray:
    """Extra input columns per row: the place in its step of the next note token (0 = top voice), and beats
    since the last fermata's step (16: none yet or long ago), for the step the next token belongs to."""
    tok = rows[:, 0]
    cols = []
    for name in which:
        if name == "voice":
            is_note = (tok != step) & (tok != fermata) & (tok > 4)
            out, k = np.zeros(len(tok), np.int64), 0
            for j, t in enumerate(tok):
                k = 0 if t == step else k + int(is_note[j])
                out[j] = min(k, EXTRA["voice"] - 1)
        else:
            out, s, last = np.zeros(len(tok), np.int64), 0, None
            for j, t in enumerate(tok):
                if t == fermata:
                    last = s
                if t == step:
                    s += 1
                out[j] = 16 if last is None else min(16, (s - last) // 4)
        cols.append(out)
    return np.stack(cols, 1) if cols else np.zeros((len(tok), 0), np.int64)


def run_one(name: str, data_path: str, seconds: float, out_dir: str) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.func import functional_call

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data, units, dropout, wd, rec, which = EXPERIMENTS[name]
    _, meta, sets = load(data_path, data)
    vocab, positions, step, fermata = meta["vocab"], meta["positions"], meta["step"], meta["fermata"]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sets = {k: [np.concatenate([p, extras(p, step, fermata, which)], 1) for p in v] for k, v in sets.items()}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_token = nn.Embedding(vocab, 32)
            self.embed_position = nn.Embedding(positions, 8)
            self.embed_extra = nn.ModuleList([nn.Embedding(EXTRA[w], 8) for w in which])
            size = 40 + 8 * len(which)
            self.lstms = nn.ModuleList()
            for u in units:
                self.lstms.append(nn.LSTM(size, u, batch_first=True))
                size = u
            self.head = nn.Linear(size, vocab)

        def forward(self, x):
            h = torch.cat([self.embed_token(x[..., 0]), self.embed_position(x[..., 1])]
                          + [e(x[..., 2 + i]) for i, e in enumerate(self.embed_extra)], -1)
            for lstm in self.lstms:
                if rec and self.training:  # DropConnect on the recurrent weights (AWD-LSTM), cuDNN still used
                    params = dict(lstm.named_parameters())
                    params["weight_hh_l0"] = F.dropout(params["weight_hh_l0"], rec, True)
                    h, _ = functional_call(lstm, params, (h,))
                else:
                    h, _ = lstm(h)
                h = F.dropout(h, dropout, self.training)
            return self.head(h)

    net = Net().to(dev)
    for lstm in net.lstms:  # Keras's LSTM initialisation: forget-gate bias 1, the rest 0
        u = lstm.hidden_size
        with torch.no_grad():
            lstm.bias_ih_l0.zero_()
            lstm.bias_hh_l0.zero_()
            lstm.bias_ih_l0[u:2 * u] = 1.0
    opt = (torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=wd) if wd
           else torch.optim.Adam(net.parameters(), lr=LR))
    train = sets["train"]
    lengths = np.array([len(p) for p in train])
    weights = np.maximum(lengths - 1, 1) / np.maximum(lengths - 1, 1).sum()  # pieces drawn by their tokens
    cols = train[0].shape[1]

    def batch():
        idx = rng.choice(len(train), BATCH, p=weights)
        x = np.zeros((BATCH, SEQ + 1, cols), np.int64)
        m = np.zeros((BATCH, SEQ), np.float32)
        for b, i in enumerate(idx):
            p = train[i]
            start = rng.integers(0, max(1, len(p) - SEQ)) if len(p) > SEQ + 1 else 0
            w = p[start:start + SEQ + 1]
            x[b, :len(w)] = w
            m[b, :len(w) - 1] = 1
        return torch.from_numpy(x).to(dev), torch.from_numpy(m).to(dev)

    def score(pieces):
        """Total loss, tokens and step tokens of whole pieces run from their start (evaluate's figure)."""
        net.eval()
        total, count, steps = 0.0, 0, 0
        with torch.no_grad():
            for k in range(0, len(pieces), 64):
                group = pieces[k:k + 64]
                n = max(len(p) for p in group)
                x = np.zeros((len(group), n, cols), np.int64)
                m = np.zeros((len(group), n - 1), np.float32)
                for b, p in enumerate(group):
                    x[b, :len(p)] = p
                    m[b, :len(p) - 1] = 1
                    steps += int((p[1:, 0] == step).sum())
                xt = torch.from_numpy(x).to(dev)
                logits = net(xt[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, vocab), xt[:, 1:, 0].reshape(-1), reduction="none")
                total += float((loss * torch.from_numpy(m).to(dev).reshape(-1)).sum())
                count += int(m.sum())
        net.train()
        return total, count, steps

    t0 = time.time()
    best, best_state, curve, seen, batches, last_eval = math.inf, None, [], 0, 0, t0
    net.train()
    while time.time() - t0 < seconds:
        frac = (time.time() - t0) / seconds
        for g in opt.param_groups:
            g["lr"] = LR * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        x, m = batch()
        logits = net(x[:, :-1])
        loss = (F.cross_entropy(logits.reshape(-1, vocab), x[:, 1:, 0].reshape(-1), reduction="none")
                * m.reshape(-1)).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        opt.step()
        seen += int(m.sum())
        batches += 1
        if time.time() - last_eval >= EVAL_EVERY or time.time() - t0 >= seconds:
            last_eval = time.time()
            total, count, steps = score(sets["val"])
            val = total / count
            curve.append((round(last_eval - t0, 1), round(loss.item(), 4), round(val, 4)))
            if val < best:
                best = val
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    total, count, steps = score(sets["val"])
    result = {"name": name, "data": data, "units": units, "dropout": dropout, "weight_decay": wd,
              "recurrent_drop": rec, "extra": list(which), "seconds": seconds, "batches": batches,
              "train_tokens_seen": seen, "train_tokens": int(lengths.sum()), "val_loss": total / count,
              "val_loss_per_step": total / steps, "val_tokens": count, "val_steps": steps, "curve": curve}
    if "valnorm" in sets:
        total, count, steps = score(sets["valnorm"])
        result.update(valnorm_loss=total / count, valnorm_loss_per_step=total / steps)
    sd = {k: v.numpy() for k, v in best_state.items()}
    weights = {"embed_token/embeddings": sd["embed_token.weight"],
               "embed_position/embeddings": sd["embed_position.weight"]}
    for i, w in enumerate(which):
        weights[f"embed_{w}/embeddings"] = sd[f"embed_extra.{i}.weight"]
    for i in range(len(units)):
        weights[f"lstm_{i}/kernel"] = sd[f"lstms.{i}.weight_ih_l0"].T
        weights[f"lstm_{i}/recurrent_kernel"] = sd[f"lstms.{i}.weight_hh_l0"].T
        weights[f"lstm_{i}/bias"] = sd[f"lstms.{i}.bias_ih_l0"] + sd[f"lstms.{i}.bias_hh_l0"]
    weights["token/kernel"] = sd["head.weight"].T
    weights["token/bias"] = sd["head.bias"]
    np.savez(os.path.join(out_dir, f"{name}.npz"), **{k: v.astype(np.float16) for k, v in weights.items()})
    with open(os.path.join(out_dir, f"{name}.json"), "w") as fh:
        json.dump(result, fh)
    print(f"{name}: val {result['val_loss']:.4f} nats/token, {result['val_loss_per_step']:.4f} per step, "
          f"{batches} batches, {seen / 1e6:.1f}M tokens", flush=True)


def main(data_path: str, out_dir: str, seconds: float, names: list[str]) -> None:
    import tempfile

    work = tempfile.mkdtemp()  # what comes back from the device is only what main writes to out_dir
    names = names or list(EXPERIMENTS)
    procs = [subprocess.Popen([sys.executable, __file__, "--one", n, data_path, str(seconds), work]) for n in names]
    for p in procs:
        p.wait()
    results = {}
    for n in names:
        path = os.path.join(work, f"{n}.json")
        if os.path.exists(path):
            results[n] = json.load(open(path))
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    for bundle, members in BUNDLES.items():
        found = [m for m in members if os.path.exists(os.path.join(work, f"{m}.npz"))]
        if found:
            arrays = {}
            for m in found:
                with np.load(os.path.join(work, f"{m}.npz")) as z:
                    arrays.update({f"{m}|{k}": z[k] for k in z.files})
            np.savez(os.path.join(out_dir, bundle), **arrays)
    for n, r in sorted(results.items(), key=lambda kv: kv[1]["val_loss"]):
        print(f"{n:24s} {r['val_loss']:.4f} nats/token {r['val_loss_per_step']:.4f} per step "
              f"{r['train_tokens_seen'] / r['train_tokens']:.0f} passes", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        run_one(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:])
