"""Command line: python -m musicgen inspect|import|datasets ...

Problems print as `error: ...` on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys

from .errors import MusicgenError


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
    from . import corpus
    from .explore import summarize
    from .midi_io import Notes, read_parts

    usable = 0
    for spec in args.paths:
        if corpus.is_dataset_name(spec):
            data = corpus.open_dataset(spec, ProgressBar())
            for piece in data.pieces:
                print(f"{data.name}/{piece.name}: {summarize(piece.notes).text()}")
            for problem in data.problems:
                print(f"error: {data.name}/{problem}", file=sys.stderr)
            usable += len(data.pieces)
            print(f"{data.name}: {summarize([p.notes for p in data.pieces]).text()}", file=sys.stderr)
            continue
        files, problems = corpus.read_sources([spec])
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
    from . import corpus
    from .explore import summarize

    report = corpus.import_files(args.name, args.paths, ProgressBar())
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    d = report.dataset
    extra = f", {report.duplicates} already there" if report.duplicates else ""
    print(f"{d.name}: added {len(report.added)} file{'s' if len(report.added) != 1 else ''}{extra}; "
          f"now {summarize([p.notes for p in d.pieces]).text()}")
    return 0


def cmd_datasets(args) -> int:
    from . import corpus
    from .explore import clock

    for info in corpus.list_datasets():
        kind = "built-in" if info.builtin else "user"
        size = (f"{info.pieces:,} pieces, {info.notes:,} notes, {clock(info.seconds)}" if info.built
                else "not built yet (made on first use, about a minute)")
        print(f"{info.name:24s} {kind:8s} {size}  {info.title}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicgen", description="Train LSTM networks on MIDI and generate music.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("inspect", help="check MIDI files, folders, zips or a dataset and count their notes")
    s.add_argument("paths", nargs="+", metavar="PATH", help="a MIDI file, folder, zip, or dataset name")
    s.set_defaults(run=cmd_inspect)
    s = sub.add_parser("import", help="make or extend a named dataset from MIDI files, folders or zips")
    s.add_argument("name", help="dataset name, e.g. my-songs")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.set_defaults(run=cmd_import)
    s = sub.add_parser("datasets", help="list built-in and user datasets with their sizes")
    s.set_defaults(run=cmd_datasets)
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


if __name__ == "__main__":
    sys.exit(main())
