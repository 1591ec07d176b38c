"""What the app's jobs do in their own process: make a piece (compose or harmonize, then render it), engrave a
section, open a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from musicgen.data import datasets
from musicgen.learn.sample import generate, harmonize, load_step_model
from musicgen.render.bundle import render_all
from musicgen.render.notation import sheet
from musicgen.runs.provenance import model_quotes

MAX_JOB_S = 180  # the longest piece the app makes takes at most this long, by this server's measured pace


SECONDS_PER_EVENT = 0.02  # the pace assumed until a piece has been made here


def length_cap(seconds_per_event: float) -> int:
    """The most events a piece may have to be made within MAX_JOB_S at this pace."""
    return max(8, int(MAX_JOB_S / max(seconds_per_event, 1e-4)))


@dataclass(frozen=True)
class PieceRequest:
    """A piece to make: from a model, after a primer or under a melody, rendered for the page."""

    model: str  # the model's folder
    sampling: object  # SampleConfig
    title: str
    program: int  # General MIDI instrument of the sound
    primer: object = None  # Notes the piece continues, if any
    melody: object = None  # Notes to harmonize, if any (then primer is None)
    quotes: object = None  # metrics.Quotes of the model's training music, when the asker has them at hand


@dataclass(frozen=True)
class Piece:
    rendered: object  # render.Rendered
    note: str | None  # what the model said about the input, if anything
    model: str  # the model's folder


COMPOSE_SHARE = 0.5  # of the progress bar: composing, then rendering


def make_piece(request: PieceRequest, progress=None) -> Piece:
    say = progress or (lambda fraction, stage: None)
    say(0.0, "loading the model")
    model = load_step_model(request.model)

    def composing(fraction: float) -> None:
        say(COMPOSE_SHARE * fraction, "harmonizing" if request.melody is not None else "composing")

    if request.melody is not None:
        result = harmonize(model, request.melody, request.sampling, progress=composing)
    else:
        quotes = request.quotes
        if quotes is None:
            say(0.0, "reading the model's training music")
            quotes = model_quotes(Path(request.model))
        result = generate(model, request.sampling, request.primer, quotes, progress=composing)
    notes, seam = result.notes, None
    if request.primer is not None and result.after is not None:  # the primer plays and engraves too
        notes = request.primer.joined(result.notes, result.after)
        seam = result.after + (float(result.notes.start_beat.min()) if len(result.notes) else 0.0)
    rendered = render_all(notes, request.title, request.program,
                                 lambda f, stage: say(COMPOSE_SHARE + (1 - COMPOSE_SHARE) * f, stage), seam)
    say(1.0, "done")
    return Piece(rendered, result.note, request.model)


def make_sheet(notes, title: str, k: int, seam: float | None = None, progress=None):
    (progress or (lambda f, s: None))(0.0, "engraving")
    return sheet(notes, title, k, seam)


def open_dataset(name: str, progress=None) -> None:
    """Make a dataset quick to open (build a built-in corpus, parse new files into the cache), in a job: it
    goes on while the pages that asked for it come and go."""
    say = progress or (lambda fraction, stage: None)
    say(0.0, "opening the dataset")
    datasets.open_dataset(name, lambda done, total, what: say(done / max(total, 1), f"{what}: {done:,} of {total:,}"))
