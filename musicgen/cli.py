"""Command line: python -m musicgen inspect|import|datasets|train|generate|harmonize|evaluate ...

Problems print as `error: ...` on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from musicgen.data import builtins, datasets, imports, sources
from musicgen.errors import MusicgenError
from musicgen.learn import sample
from musicgen.render.audio import audio
from musicgen.render import notation
from musicgen.runs import provenance, store


class ProgressBar:
    """Progress on stderr: a redrawn bar on a terminal, a line at start and end otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.what = None

    def __call__(self, done: int, total: int, what: str) -> None:
        if self.tty:
            filled = int(30 * done / max(total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {what}")
            if done >= total:
                self.stream.write("\n")
        elif what != self.what or done >= total:
            self.stream.write(f"{what}: {done}/{total}\n")
        self.what = what
        self.stream.flush()


def cmd_inspect(args) -> int:
    from musicgen.music.midi import read_parts
    from musicgen.music.notes import Notes, summarize

    usable = 0
    for spec in args.paths:
        if datasets.is_dataset_name(spec):
            data = datasets.open_dataset(spec, ProgressBar())
            for piece in data.pieces:
                print(f"{data.name}/{piece.name}: {summarize(piece.notes).text()}")
            for problem in data.problems:
                print(f"error: {data.name}/{problem}", file=sys.stderr)
            usable += len(data.pieces)
            print(f"{data.name}: {data.summary().text()}", file=sys.stderr)
            continue
        files, problems = sources.read_sources([spec])
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        for f in files:
            try:
                parts = read_parts(f.data, name=f.label)
            except MusicgenError as e:
                print(f"error: {e}", file=sys.stderr)
                continue
            usable += 1
            print(f"{f.label}: {summarize(Notes.concat([p.notes for p in parts])).text()}, "
                  f"{len(parts)} instrument{'s' if len(parts) != 1 else ''}")
    if not usable:
        print("error: no usable MIDI file", file=sys.stderr)
        return 2
    return 0


def cmd_import(args) -> int:

    report = imports.import_files(args.name, args.paths, ProgressBar(), pedal=args.pedal)
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    extra = f", {report.duplicates} already there" if report.duplicates else ""
    print(f"{report.name}: added {len(report.added)} file{'s' if len(report.added) != 1 else ''}{extra}; "
          f"now {report.summary.text()}")
    return 0


def cmd_datasets(args) -> int:
    from musicgen.music.notes import clock

    if args.build:
        for name in builtins.BUILTINS:  # made from music21's scores once (again after a new version), then cached
            builtins.build_builtin(name, ProgressBar())
            datasets.open_dataset(name, ProgressBar())
    for info in datasets.list_datasets():
        kind = "built-in" if info.builtin else "user"
        size = (f"{info.pieces:,} pieces, {info.notes:,} notes, {clock(info.seconds)}" if info.built
                else "not built yet (made on first use, about a minute)")
        print(f"{info.name:24s} {kind:8s} {size}  {info.title}")
    return 0


def cmd_train(args) -> int:
    import atexit
    import shutil
    import signal
    import tempfile
    import threading

    from musicgen.config import cluster, join_cluster
    from musicgen.errors import ConfigError
    from musicgen.runs.store import mark_failed
    from musicgen.services.trainer import TRAIN_NICENESS

    try:
        os.nice(TRAIN_NICENESS)
    except OSError:
        pass
    stop = threading.Event()
    if args.workers:
        join_cluster(args.workers.split(","), args.worker_index)
    out = store.model_path(args.out)  # a bare name goes to the models folder, as in the app

    def on_signal(signum, frame):
        print("\nstopping after this batch; the model will be saved...", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    index, workers = cluster()
    if workers:
        if args.resume:
            raise ConfigError("A run across workers cannot be resumed; resume it on one machine without --workers.")
        if index > 0:  # only the chief keeps the run; the others write a copy that is thrown away
            out = Path(tempfile.mkdtemp(prefix="musicgen-worker-")) / out.name
            atexit.register(shutil.rmtree, out.parent, True)
    try:
        status = _train(args, out, stop)
    except Exception as e:  # the run folder must say what happened: the app shows it within a second
        mark_failed(out, str(e) if isinstance(e, MusicgenError) else f"Training failed: {type(e).__name__}: {e}")
        raise
    best = status.get("best_val_loss")
    where = f"Saved in {out}." if index == 0 else "Worker 0 keeps the model."
    print(f"{status['state']}: {status['message']}"
          + (f" Best validation loss {best:.4f}." if best is not None else "") + f" {where}")
    return 0


def _train(args, out, stop) -> dict:
    from musicgen.config import checked
    from musicgen.errors import ConfigError
    from musicgen.families import FAMILIES, preset
    from musicgen.learn.train import resume, train

    data = datasets.load_data(args.data, ProgressBar())
    if args.resume:
        return resume(out, data, ProgressBar(), stop, epochs=args.epochs)
    else:
        if args.family is None and args.init is None:
            raise ConfigError(f"Choose a model family with --family ({' or '.join(FAMILIES)}).")
        model_cfg, train_cfg = preset(args.family or "pitch-step-duration", args.preset)
        if args.init is not None:  # fine-tuning goes on with the base model's own training settings
            from musicgen.runs.store import check_model, read_configs

            model_cfg, train_cfg, _ = read_configs(check_model(args.init))
        model_changes = {k: v for k, v in (("seq_length", args.seq_length), ("dropout", args.dropout),
                                             ("units", tuple(args.units) if args.units else None),
                                             ("time_heads", args.time_heads), ("grid", args.grid),
                                             ("normalize_key", args.normalize_key)) if v is not None}
        train_changes = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                             ("learning_rate", args.learning_rate), ("optimizer", args.optimizer),
                                             ("seed", args.seed), ("patience", args.patience),
                                             ("transpose", args.transpose)) if v is not None}
        model_cfg = checked(model_cfg, **model_changes)
        train_cfg = checked(train_cfg, **train_changes)
        return train(data, out, model_cfg, train_cfg, ProgressBar(), stop, init_from=args.init)


def cmd_generate(args) -> int:
    from musicgen.config import SampleConfig, checked
    from musicgen.learn.sample import generate
    from musicgen.music.notes import summarize

    _check_outputs(args.out, args.wav, args.musicxml)
    folder = store.check_model(args.model) if args.model else store.default_model()
    step_model = sample.load_step_model(folder)
    temperature = args.temperature if args.temperature is not None else store.default_temperature(folder)
    sampling = checked(SampleConfig(), length=args.length, temperature=temperature, seed=args.seed,
                       voices=args.voices)
    primer = _primer(args.primer, folder, args.primer_notes, args.seed) if args.primer else None
    result = generate(step_model, sampling, primer, provenance.model_quotes(folder))
    _write_outputs(result.notes, args, f"{folder.name}, seed {sampling.seed}")
    ended = " (the model ended the piece)" if result.ended else ""
    print(f"wrote {args.out}: {summarize(result.notes).text()}{ended}; model {folder.name}, "
          f"temperature {sampling.temperature}, seed {sampling.seed}")
    return 0


def cmd_harmonize(args) -> int:
    from musicgen.config import SampleConfig, checked
    from musicgen.learn.sample import harmonize
    from musicgen.music.notes import summarize

    _check_outputs(args.out, args.wav, args.musicxml)
    folder = store.check_model(args.model or store.HARMONIZE_MODEL)
    step_model = sample.load_step_model(folder)
    temperature = args.temperature if args.temperature is not None else store.default_temperature(folder)
    sampling = checked(SampleConfig(), temperature=temperature, seed=args.seed, voices=args.voices)
    melody = _primer(args.melody, folder, None, args.seed)
    result = harmonize(step_model, melody, sampling)
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    _write_outputs(result.notes, args, f"{Path(args.melody).stem} harmonized by {folder.name}, seed {sampling.seed}")
    print(f"wrote {args.out}: {summarize(result.notes).text()}, {result.notes.voices} voices; model {folder.name}, "
          f"temperature {sampling.temperature}, seed {sampling.seed}")
    return 0


def _check_outputs(*paths) -> None:
    """Every output path is a file in a folder that exists: checked before anything is written."""
    from musicgen.errors import MusicgenError

    for p in (Path(p) for p in paths if p):
        if p.is_dir():
            raise MusicgenError(f"{p} is a folder; give a file name, such as {p / 'piece.mid'}.")
        if not p.parent.is_dir():
            raise MusicgenError(f"The folder {p.parent} does not exist; make it first or write elsewhere.")


def _write_outputs(notes, args, title: str) -> None:
    """The MIDI file, and the WAV and MusicXML files when asked for."""
    from musicgen.infra.files import write_atomic
    from musicgen.music.midi import write_midi

    write_midi(notes, args.out)
    if args.wav:
        sound = audio(notes)
        write_atomic(Path(args.wav), sound.wav)
        if sound.note:
            print(f"note: {sound.note}", file=sys.stderr)
    if args.musicxml:
        write_atomic(Path(args.musicxml), notation.musicxml(notes, title))


def _primer(spec: str, folder, notes: int | None, seed: int):
    """A MIDI file, DATASET/PIECE, or 'validation' (a piece of the model's validation split, drawn by seed);
    its first `notes` notes (all when None)."""
    from musicgen.errors import MusicgenError
    from musicgen.music.midi import read_midi

    if spec == "validation":
        pieces = provenance.model_pieces(Path(folder), "validation")
        if not pieces:
            raise MusicgenError("The model has no validation pieces to take a primer from.")
        return _first(pieces[sorted(pieces)[seed % len(pieces)]], notes)
    if Path(spec).exists():
        return _first(read_midi(spec), notes)
    dataset, _, piece = spec.partition("/")
    if piece and datasets.is_dataset_name(dataset):
        return _first(datasets.open_dataset(dataset).piece(piece).notes, notes)
    raise MusicgenError(f"The primer '{spec}' is neither a MIDI file, DATASET/PIECE, nor 'validation'.")


def _first(notes, count: int | None):
    return notes if count is None else notes.head(count)


def cmd_evaluate(args) -> int:

    from musicgen.config import SampleConfig, checked
    from musicgen.errors import ConfigError

    for name in ("samples", "harmonize"):
        if not 0 <= getattr(args, name) <= 1000:
            raise ConfigError(f"{name.capitalize()} must be between 0 and 1000 (got {getattr(args, name)}).")
    folder = store.check_model(args.model)
    if args.temperature is None:
        args.temperature = store.default_temperature(folder)
    checked(SampleConfig(), length=args.length, temperature=args.temperature, seed=args.seed, voices=args.voices)
    data = datasets.load_data(args.data) if args.data else None
    r = _evaluated(folder, data)
    print(f"{folder.name}: {r['pieces']} held-out pieces, {r['events']} predictions, each from the piece's start")
    for head, loss in r["loss"].items():
        print(f"  {head:9s} loss {loss:.4f}" + (f" nats ({loss / math.log(2):.4f} bits) a token, "
                                                f"{r['loss_per_step']:.4f} nats a grid step ({r['steps']} steps)"
                                                if "loss_per_step" in r and head == next(iter(r["loss"])) else ""))
    for order, gram in r.get("ngram", {}).items():
        step = f", {gram['loss_per_step']:.4f} nats a grid step" if "loss_per_step" in gram else ""
        print(f"  {order}-gram    loss {gram['loss']:.4f} nats ({gram['loss'] / math.log(2):.4f} bits) a token{step}"
              f" (Witten-Bell, fitted on the training pieces: the baseline)")
    print(f"  next-{next(iter(r['loss']))} accuracy {r['accuracy']:.3f}")
    for head in r["loss"]:
        if f"{head}_mae" in r:
            print(f"  {head:9s} mean error {r[f'{head}_mae']:.3f} {r['unit']}, spread {r[f'{head}_spread']:.2f} "
                  f"of the real one")
    if args.samples:
        _print_samples(folder, data, args)
    if args.harmonize:
        _print_harmonies(folder, data, args)
    return 0


def _evaluated(folder, data) -> dict:
    """evaluate's figures, with the n-gram baselines where the training pieces are on this computer."""
    from musicgen.errors import MusicgenError
    from musicgen.learn.evaluate import NGRAM_ORDERS, evaluate

    release = data.release_pages if data else None
    try:
        return evaluate(folder, data, release=release, baselines=NGRAM_ORDERS)
    except MusicgenError:  # the training dataset is not here: no baselines
        return evaluate(folder, data, release=release)


def _print_rows(rows) -> None:
    from musicgen.analysis.metrics import FOUR_PART, STATISTICS

    print(f"  {'statistic':20s} {'corpus mean +- sd':>22s} {'band':>19s} {'generated':>10s}  inside the band")
    for row in rows:
        unit = {**STATISTICS, **FOUR_PART}[row.name][0]
        print(f"  {row.name:20s} {row.corpus_mean:10.3f} +- {row.corpus_sd:7.3f} {row.low:8.3f} - {row.high:8.3f} "
              f"{row.generated_mean:10.3f}  {'yes' if row.inside else 'NO '}  ({unit}; band: {row.band})")


def _print_harmonies(folder, data, args) -> None:
    """Harmonize melodies the model never learned from and compare the results with its training pieces."""
    from musicgen.analysis.metrics import harmony_report

    training = {p.name: p.notes for p in data.pieces} if data else provenance.model_pieces(folder, "train")
    if args.melodies == "validation":  # the sopranos of the model's own held-out chorales
        melodies = [n.take(n.voice == 0) for n in provenance.model_pieces(folder, "validation").values()]
    else:
        melodies = [p.notes for p in datasets.load_data(args.melodies).pieces]
    melodies = melodies[:args.harmonize]
    report = harmony_report(sample.load_step_model(folder), training, melodies, args.temperature, args.voices,
                            args.seed)
    print(f"{len(melodies)} melodies ({args.melodies}) harmonized in {args.voices} voices at temperature "
          f"{args.temperature} vs {len(training)} training pieces")
    _print_rows(report.rows)
    print(f"  melody kept note for note on top: {report.kept} of {len(melodies)}; "
          f"{report.voices_under:.2f} notes under each melody note on average")
    for note in report.notes:
        print(f"  note: {note}")


def _print_samples(folder, data, args) -> None:
    from musicgen.analysis.metrics import sample_report
    from musicgen.learn import sample
    from musicgen.runs import provenance

    training = {p.name: p.notes for p in data.pieces} if data else provenance.model_pieces(folder, "train")
    report = sample_report(sample.load_step_model(folder), training, args.samples, args.length,
                           args.temperature, args.seed)
    print(f"{len(report.pieces)} generated pieces of {args.length} events at temperature {args.temperature} "
          f"vs {len(training)} training pieces")
    _print_rows(report.rows)
    import numpy as np

    from musicgen.analysis.metrics import LENGTH_LABELS, length_histogram

    corpus_hist = np.mean([length_histogram(n) for n in training.values()], axis=0)
    generated_hist = np.mean([length_histogram(n) for n in report.pieces], axis=0)
    print("  note lengths (beats): " + ", ".join(f"{label} {c:.0%}/{g:.0%}" for label, c, g in
                                                zip(LENGTH_LABELS, corpus_hist, generated_hist))
          + "  (corpus/generated)")
    copy = report.longest
    print(f"  longest copied run: {copy.notes} notes" + (f", from {copy.piece}" if copy.piece else ""))


def _output_arguments(s, what: str) -> None:
    """The files a command writes: MIDI, and on request audio and sheet music."""
    s.add_argument("--out", required=True, help="the MIDI file to write")
    s.add_argument("--wav", help=f"also write the {what} as audio (WAV) here")
    s.add_argument("--musicxml", help=f"also write the {what} as sheet music (MusicXML) here")


def parser() -> argparse.ArgumentParser:
    from musicgen.families import FAMILIES, REGISTRY

    p = argparse.ArgumentParser(prog="python -m musicgen",
                                description="Train LSTM networks on MIDI and generate music.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("inspect", help="check MIDI files, folders, zips or a dataset and count their notes")
    s.add_argument("paths", nargs="+", metavar="PATH", help="a MIDI file, folder, zip, or dataset name")
    s.set_defaults(run=cmd_inspect)
    s = sub.add_parser("import", help="make or extend a named dataset from MIDI files, folders or zips")
    s.add_argument("name", help="dataset name, e.g. my-songs")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--pedal", action=argparse.BooleanOptionalAction,
                   help="read the dataset with the sustain pedal applied to note lengths (piano performances)")
    s.set_defaults(run=cmd_import)
    s = sub.add_parser("datasets", help="list built-in and user datasets with their sizes")
    s.add_argument("--build", action="store_true", help="first make the built-in corpora that are not made yet")
    s.set_defaults(run=cmd_datasets)

    s = sub.add_parser("train", help="train a model in models/NAME (Ctrl-C stops and saves; --resume continues)")
    s.add_argument("--data", required=True, help="dataset name, or a MIDI file, folder or zip")
    s.add_argument("--family", choices=list(FAMILIES))
    s.add_argument("--out", required=True, help="the model folder, e.g. models/my-model")
    s.add_argument("--preset", default="default", help="; ".join(f"{name}: {', '.join(f.presets)}"
                                                                 for name, f in REGISTRY.items()))
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seq-length", type=int)
    s.add_argument("--units", type=int, nargs="+", help="LSTM sizes, one per layer, e.g. --units 256 256")
    s.add_argument("--dropout", type=float)
    s.add_argument("--time-heads", choices=["categorical", "regression"],
                   help="pitch-step-duration: step and duration as time bins (default) or values (the tutorial)")
    s.add_argument("--grid", type=int, choices=[4, 2], help="polyphony: grid steps per beat (4: sixteenths)")
    s.add_argument("--normalize-key", action=argparse.BooleanOptionalAction,
                   help="polyphony: move every piece to C major / A minor (the presets do; --no-normalize-key "
                        "keeps keys, e.g. with --transpose)")
    s.add_argument("--learning-rate", type=float)
    s.add_argument("--optimizer", choices=["adam", "adamax", "rmsprop"])
    s.add_argument("--patience", type=int, help="epochs without improvement before stopping early")
    s.add_argument("--seed", type=int)
    s.add_argument("--transpose", type=int, help="also train on each piece moved up and down by up to N semitones")
    s.add_argument("--resume", action="store_true", help="continue the stopped run in --out")
    s.add_argument("--init", metavar="MODEL", help="fine-tune this model (its family and vocabulary) on --data")
    s.add_argument("--workers", metavar="HOST:PORT,...", help="train across machines: every worker's address "
                   "(the same list on each; or set TF_CONFIG); worker 0 writes --out")
    s.add_argument("--worker-index", type=int, default=0, help="this machine's place in --workers")
    s.set_defaults(run=cmd_train)

    s = sub.add_parser("generate", help="generate a piece as MIDI")
    s.add_argument("--model", help="a model name or folder (default: the pretrained default)")
    s.add_argument("--length", type=int, default=120, help="notes (or chords) to generate")
    s.add_argument("--temperature", type=float, help="default: the model's chosen temperature, else 1.0")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--primer", help="a MIDI file, DATASET/PIECE, or 'validation'")
    s.add_argument("--primer-notes", type=int, default=32, help="how many of the primer's first notes to use")
    s.add_argument("--voices", type=int, default=4, help="polyphony: at most this many notes at once")
    _output_arguments(s, "piece")
    s.set_defaults(run=cmd_generate)

    s = sub.add_parser("harmonize", help="write voices under a melody (a polyphony model, bach-voices by default)")
    s.add_argument("melody", metavar="MELODY", help="a MIDI file (its top line is the melody), DATASET/PIECE, "
                   "or 'validation'")
    s.add_argument("--model", help="a polyphony model (default: bach-voices)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--temperature", type=float, help="default: the model's chosen temperature")
    s.add_argument("--voices", type=int, default=4, help="voices in all, the melody included")
    _output_arguments(s, "result")
    s.set_defaults(run=cmd_harmonize)

    s = sub.add_parser("evaluate", help="held-out loss and accuracy of a model")
    s.add_argument("--model", required=True)
    s.add_argument("--data", help="evaluate on every piece of this dataset instead of the validation pieces")
    s.add_argument("--samples", type=int, default=0, help="also generate this many pieces and compare their "
                   "statistics with the training pieces'")
    s.add_argument("--harmonize", type=int, default=0, help="polyphony: also harmonize this many melodies and "
                   "compare the results with the training pieces")
    s.add_argument("--melodies", default="validation", help="the melodies to harmonize: 'validation' (the sopranos "
                   "of the model's held-out chorales) or a dataset, e.g. essen-folk")
    s.add_argument("--voices", type=int, default=4, help="voices of the harmonizations")
    s.add_argument("--length", type=int, default=120, help="events per generated piece")
    s.add_argument("--temperature", type=float, help="default: the model's chosen temperature, else 1.0")
    s.add_argument("--seed", type=int, default=0, help="seed of the first generated piece")
    s.set_defaults(run=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except MusicgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

