"""polyphony: voices on a beat grid, as BachBot and Magenta's Polyphony RNN encode them.

At each grid step (a sixteenth note by default) '<fermata>' where the step is under one (a phrase's end, as
BachBot marks it), the sounding notes from the highest down, each as 'new P' (it starts here) or 'held P' (it goes
on from the step before), then '<step>'. The input row is
(token, position within the bar of the step the next token belongs to): the phrase structure lives there.
The same encoding harmonizes a melody: the top voice is given, the voices under it are sampled.
"""

from __future__ import annotations

import itertools

import numpy as np

from musicgen.config import PITCH_MAX, PITCH_MIN, ModelConfig, SampleConfig
from musicgen.errors import MidiError
from musicgen.families.base import (END, PAD, SPECIALS, START, UNK, Column, Encoding, Family, Generated, Head,
    Rewind, Sampler, log_probability, moved_token_rows, piano_bounds, pick, tempo_of)
from musicgen.music.notes import Notes, TempoMap
from musicgen.music.grid import bar_positions, grid_steps, key_shift, sonorities
from musicgen.music.theory import note_name, parallel

STEP = "<step>"
FERMATA = "<fermata>"  # in the vocabulary of models whose training pieces had fermatas
POSITION_EMBEDDING = 8
MAX_POSITIONS = 48  # grid steps per bar told apart (12/8 at sixteenths); later steps share the last
PITCH_MARGIN = 6  # semitones kept below and above the training range, for transposed melodies
END_ALLOWED_AFTER = 0.5  # fraction of the asked length before a model may end a piece
MAX_STEPS_PER_ONSET = 32  # a generation stops after this many grid steps per asked onset (long rests)
HARMONY_CHOICES = 4  # draws of each step of a harmonization, the likeliest kept
MAX_QUOTE_TRIES = 24  # a step is chosen again at most this often to keep clear of a quotation
VOICE_HOMES = (67, 62, 55, 48)  # a starting pitch for soprano, alto, tenor and bass, for assign_voices
RANGE_PERCENTILES = (1, 99)  # of each voice's pitches in the training pieces: its range
SPAN_PERCENTILE = 95  # a generated voice spans at most what this share of the training pieces' voices do
RANGE_PIECES = 2000  # pieces read for the ranges, at most (evenly spread over a larger collection)


def new(p: int) -> str:
    return f"new {p}"


def held(p: int) -> str:
    return f"held {p}"


# ---------------------------------------------------------------- the grid


def fermata_steps(notes: Notes, steps_per_beat: int) -> set[int]:
    """The grid steps under a fermata: from each fermata's beat to the end of the highest note starting there
    (the melody's, where a fermata is written)."""
    if not notes.fermatas or not len(notes):
        return set()
    on, off = grid_steps(notes, steps_per_beat)
    out = set()
    for b in notes.fermatas:
        s = int(round(b * steps_per_beat))
        here = np.flatnonzero(on == s)
        out.update(range(s, int(off[here[np.argmax(notes.pitch[here])]]) if len(here) else s + 1))
    return out


def fermata_beats(steps: set[int] | frozenset[int], steps_per_beat: int) -> tuple[float, ...]:
    """The beats where runs of steps under a fermata begin: the fermatas of decoded music."""
    return tuple(s / steps_per_beat for s in sorted(steps) if s - 1 not in steps)


def voice_ranges(pieces: list[list[list[tuple[int, bool]]]]) -> tuple[tuple[int, int, int], ...]:
    """Per voice from the top, (lowest, highest, widest span in one piece) of the pieces' sonorities (grid steps
    of (pitch, is new) from the highest down): voices counted where a step sounds as many notes as most steps
    do (four in the chorales). () when the music has fewer than two voices."""
    counts = np.bincount([len(s) for piece in pieces for s in piece if s], minlength=1)
    voices = int(counts.argmax()) if len(counts) > 1 else 0
    if voices < 2:
        return ()
    per_piece = [np.array([[p for p, _ in s] for s in piece if len(s) == voices], np.int64).reshape(-1, voices)
                 for piece in pieces]
    per_piece = [a for a in per_piece if len(a)]
    every = np.concatenate(per_piece)
    low, high = np.percentile(every, RANGE_PERCENTILES, axis=0)
    span = np.percentile([a.max(0) - a.min(0) for a in per_piece], SPAN_PERCENTILE, axis=0)
    return tuple((int(np.floor(lo)), int(np.ceil(hi)), int(np.ceil(sp))) for lo, hi, sp in zip(low, high, span))


def voice_extremes(steps: list[list[tuple[int, bool]]], voices: int = len(VOICE_HOMES)) -> np.ndarray | None:
    """(voices, 2): each voice's lowest and highest pitch (from the top) over the steps that sound `voices`
    notes; None when none does."""
    full = np.array([[p for p, _ in s] for s in steps if len(s) == voices], np.int64).reshape(-1, voices)
    return np.stack([full.min(0), full.max(0)], 1) if len(full) else None


def assign_voices(pitches: list[int], fixed: dict[int, int], last: list[int]) -> list[int]:
    """Voices (0 = top) of a step's pitches, given from the highest down: in order, the held ones keeping
    theirs (`fixed`: index -> voice), the rest moving least from each voice's last pitch. Fewer notes than
    voices leave the voice that fits worst silent (a rest in the alto, not a bass sung by the tenor)."""
    k = len(pitches)
    if not k:
        return []
    n_voices = max(len(VOICE_HOMES), k)
    best, best_cost = None, np.inf
    for combo in itertools.combinations(range(n_voices), k):
        if any(combo[i] != v for i, v in fixed.items()):
            continue
        cost = sum(abs(p - (last[v] if v < len(last) else last[-1] - 7)) for p, v in zip(pitches, combo))
        if cost < best_cost:
            best, best_cost = combo, cost
    if best is not None:
        return list(best)
    free = iter(v for v in range(n_voices + k) if v not in fixed.values())  # held notes out of order: keep theirs
    return [fixed[i] if i in fixed else next(free) for i in range(k)]


# ---------------------------------------------------------------- the family

class Polyphony(Family):
    name = "polyphony"
    help = ("voices on a beat grid, highest first, each note new or held (BachBot, Magenta's Polyphony RNN); "
            "can harmonize a melody")
    # Every preset normalizes keys: transposition into every key wins on held-out loss given long enough, but its
    # music wanders between keys while the key is no input (README, experiments at equal training time).
    presets = {
        # near BachBot: 3 LSTM layers of 256, dropout 0.3, long windows
        "default": ({"seq_length": 128, "units": (256, 256, 256), "dropout": 0.3, "embedding": 32, "grid": 4,
                     "normalize_key": True}, {"learning_rate": 0.002, "batch_size": 32, "patience": 4}),
        # a quarter of the work per token, for a first try on a laptop
        "small": ({"seq_length": 128, "units": (128, 128), "dropout": 0.2, "embedding": 32, "grid": 4,
                   "normalize_key": True}, {"learning_rate": 0.003, "batch_size": 32, "patience": 4}),
        # an eighth-note grid: half the tokens, for music without sixteenths
        "eighths": ({"seq_length": 96, "units": (256, 256, 256), "dropout": 0.3, "embedding": 32, "grid": 2,
                     "normalize_key": True}, {"learning_rate": 0.002, "batch_size": 32, "patience": 4}),
    }

    def build_encoding(self, config: ModelConfig, pieces: list[Notes]) -> Encoding:
        low, high, bar, steps = [], [], [], []  # of each piece, in C when keys are normalized: no copies kept
        fermatas = False
        every = max(1, len(pieces) // RANGE_PIECES)
        for k, p in enumerate(pieces):
            if len(p):
                shift = key_shift(p) if config.normalize_key else 0
                low.append(min(max(int(p.pitch.min()) + shift, PITCH_MIN), PITCH_MAX))
                high.append(min(max(int(p.pitch.max()) + shift, PITCH_MIN), PITCH_MAX))
                bar.append(p.bar_length() * config.grid)
                fermatas = fermatas or bool(p.fermatas)
                if k % every == 0:
                    steps.append(sonorities(p.transposed(shift), config.grid))
        lo = max(0, min(low, default=36) - PITCH_MARGIN)
        hi = min(127, max(high, default=84) + PITCH_MARGIN)
        pitches = range(lo, hi + 1)
        tokens = (SPECIALS + (STEP,) + ((FERMATA,) if fermatas else ()) + tuple(new(p) for p in pitches)
                  + tuple(held(p) for p in pitches))
        positions = int(min(MAX_POSITIONS, max(bar, default=4 * config.grid)))
        return Encoding(self.name, "categorical", tokens, tempo=tempo_of(pieces), steps_per_beat=config.grid,
                        positions=positions, normalize_key=config.normalize_key, ranges=voice_ranges(steps))

    def move_bounds(self, pieces):
        """The piano's bounds, narrowed so that each voice stays between the lowest and highest notes that voice
        sings in any of the pieces (DeepBach's transpositions: a chorale in every key its voices can sing)."""
        both = [(piano_bounds(n), voice_extremes(sonorities(n, 4)) if len(n) else None) for n in pieces]
        bounds, extremes = [b for b, _ in both], [e for _, e in both]
        known = [e for e in extremes if e is not None]
        if not known or len({len(e) for e in known}) > 1:
            return bounds
        low, high = np.min([e[:, 0] for e in known], 0), np.max([e[:, 1] for e in known], 0)
        return [b if e is None else (max(b[0], int((low - e[:, 0]).max())), min(b[1], int((high - e[:, 1]).min())))
                for b, e in zip(bounds, extremes)]

    def columns(self, config, enc):
        return (Column("token", len(enc.tokens), config.embedding), Column("position", enc.positions,
                                                                            POSITION_EMBEDDING))

    def heads(self, enc):
        return (Head("token", len(enc.tokens)),)

    def tokens(self, enc: Encoding, notes: Notes) -> tuple[list[int], list[int]]:
        """(token ids, grid step of each token) of a piece, without start and end."""
        if enc.normalize_key:
            notes = notes.transposed(key_shift(notes))
        index = enc.index
        step_id, unk, fermata_id = index[STEP], index[UNK], index.get(FERMATA)
        marked = fermata_steps(notes, enc.steps_per_beat) if fermata_id is not None else set()
        ids, steps = [], []
        for s, sounding in enumerate(sonorities(notes, enc.steps_per_beat)):
            if s in marked:
                ids.append(fermata_id)
                steps.append(s)
            for p, is_new in sounding:
                ids.append(index.get(new(p) if is_new else held(p), unk))
                steps.append(s)
            ids.append(step_id)
            steps.append(s)
        return ids, steps

    def encode(self, enc, notes):
        index = enc.index
        ids, steps = self.tokens(enc, notes)
        n_steps = (steps[-1] + 1) if steps else 0
        pos = bar_positions(n_steps, enc.steps_per_beat, notes.meter, enc.positions)
        # each row carries the position of the step its *next* token belongs to
        next_step = np.array([0] + [s + 1 if t == index[STEP] else s for t, s in zip(ids, steps)], np.int64)
        rows = np.zeros((len(ids) + 2, 2), np.int32)
        rows[:, 0] = [index[START]] + ids + [index[END]]
        rows[:-1, 1] = pos[np.minimum(next_step, n_steps)]
        return rows, rows[:, :1].astype(np.float32)

    def transpose_rows(self, enc, x, y, semitones, x_events, y_events):
        return moved_token_rows(enc, x, y, semitones, self.moved_token)

    @staticmethod
    def moved_token(token: str, semitones: int) -> str | None:
        if token in (STEP, FERMATA):
            return token
        kind, p = token.split()
        return f"{kind} {int(p) + semitones}"

    def decode(self, enc: Encoding, steps: list[list[tuple[int, bool]]], meter=(), keys=(),
               tempo_map: TempoMap | None = None, melody_steps: frozenset = frozenset(),
               fermatas: frozenset = frozenset()) -> Notes:
        """Grid steps of (pitch, is new) from the highest down, as notes with voices (see assign_voices);
        in `melody_steps` the top note is the melody, voice 0; `fermatas`: the steps under one."""
        g = enc.steps_per_beat
        open_notes: dict[int, list] = {}  # pitch -> [onset step, voice]
        last = list(VOICE_HOMES)
        rows = []
        for s, sounding in enumerate(steps + [[]]):
            for p in list(open_notes):
                if not any(q == p and not is_new for q, is_new in sounding):
                    a, v = open_notes.pop(p)
                    rows.append((p, a / g, s / g, v))
            fixed = {i: open_notes[p][1] for i, (p, is_new) in enumerate(sounding) if not is_new and p in open_notes}
            if s in melody_steps and sounding:
                fixed[0] = 0
            voices = assign_voices([p for p, _ in sounding], fixed, last)
            for (p, is_new), v in zip(sounding, voices):
                if is_new or p not in open_notes:
                    open_notes[p] = [s, v]
                while len(last) <= v:
                    last.append(last[-1] - 7)
                last[v] = p
        arr = np.array(rows, np.float64).reshape(-1, 4)
        return Notes.from_beats(arr[:, 0], arr[:, 1], arr[:, 2], voice=arr[:, 3],
                                tempo_map=tempo_map or TempoMap.constant(enc.tempo), meter=meter,
                                keys=keys).replace(fermatas=fermata_beats(fermatas, g))

    def sampler(self, enc, sampling, primer):
        return _Sampler(self, enc, sampling, primer)

    def choice_name(self, enc, k, semitones=0):
        token = enc.tokens[k]
        if token.startswith(("new ", "held ")):
            kind, p = token.split()
            return f"{note_name(int(p) + semitones)} {'starts' if kind == 'new' else 'holds'}"
        return {STEP: "nothing more now: time moves on", END: "the end"}.get(token)

    def waits(self, enc, k):
        return enc.tokens[k] == STEP

    def harmonizer(self, enc: Encoding, sampling: SampleConfig, melody: Notes) -> Sampler:
        return _Harmonizer(self, enc, sampling, melody)


class _Sampler(Sampler):
    """Free generation: every token is sampled, only ever a valid one (voices descend within a step,
    a held note was sounding the step before, at most `voices` notes a step)."""

    def __init__(self, family: Polyphony, enc: Encoding, sampling: SampleConfig, context: Notes | None):
        self.family, self.enc, self.sampling = family, enc, sampling
        self.context = context if context is not None and len(context) else None
        index = enc.index
        self.index, self.step_id, self.end_id, self.fermata_id = index, index[STEP], index[END], index.get(FERMATA)
        self.banned = [index[t] for t in (PAD, START, UNK)]
        self.pitch_of = {i: (int(t.split()[1]), t.startswith("new")) for t, i in index.items()
                         if t.startswith(("new ", "held "))}
        self.new_ids = {p: index[new(p)] for p, _ in self.pitch_of.values() if new(p) in index}
        self.held_ids = {p: index[held(p)] for p, _ in self.pitch_of.values() if held(p) in index}
        self.shift = key_shift(self.context) if (enc.normalize_key and self.context is not None) else 0
        meter = self.context.meter if self.context is not None else ()
        self.meter, self.keys = meter, (self.context.keys if self.context is not None else ())
        self.steps: list[list[tuple[int, bool]]] = []
        self.current: list[tuple[int, bool]] = []
        self.marked = False  # the current step has its fermata token
        self.fermata_steps: list[int] = []  # the generated steps under a fermata
        self.previous: set[int] = set()
        self.onsets = 0
        self.ended = False
        self.offset = 0  # grid steps of the primer before the generated ones
        self.closing: list[int] | None = None  # the pitches held to the end once the piece is long enough
        self.positions = np.zeros(1, np.int32)
        self.begun: int | None = None  # where in its bar the piece's first note starts (a pickup's length)
        self.first_step: int | None = None  # the step of the piece's first note, counted from the primer's start
        self.played: list[int] = []  # the new notes' pitches so far, in note-table order (onset, then pitch)
        self.refused: dict[tuple, set[int]] = {}  # this step's tokens refused after a prefix: they made a quote
        self.tries = 0
        self.span: list[tuple[int, int]] = [(128, -1)] * len(enc.ranges)  # each voice's lowest and highest so far
        self.bar = int(round((context.bar_length() if self.context is not None else 4.0) * enc.steps_per_beat))

    def max_steps(self) -> int:
        return self.sampling.length * MAX_STEPS_PER_ONSET

    def rows(self):
        rows = [np.array([self.index[START], 0], np.int32)]
        if self.context is not None:
            inputs, _ = self.family.encode(self.enc, self.context)
            body = inputs[1:-1, 0].tolist()  # the primer's tokens, each step closed by a step token
            if body:
                self.offset = body.count(self.step_id)
                cut = max((i for i, t in enumerate(body[:-1]) if t == self.step_id), default=-1)
                self.previous = {self.pitch_of[t][0] for t in body[cut + 1:-1] if t in self.pitch_of}  # last step
                rows = list(inputs[:-1])  # the start row and the primer's, not its end
        self.positions = bar_positions(self.offset + self.max_steps() + self.bar + 1, self.enc.steps_per_beat,
                                       self.meter, self.enc.positions)
        rows[0][1] = self.positions[0]
        first = next((i for i, t in enumerate(body) if t in self.pitch_of), None) if self.offset else None
        if first is not None:  # the primer's first note: where the piece began
            self.first_step = body[:first].count(self.step_id)
            self.begun = int(self.positions[self.first_step])
        return rows

    def _position(self) -> int:
        return int(self.positions[min(self.offset + len(self.steps), len(self.positions) - 1)])

    def _may_end(self) -> bool:
        """Whether the piece may end here: on a bar line, or where in the bar it began (a last bar that
        completes the pickup), as 98% of the chorales end; elsewhere a last bar stops half-way."""
        return self._position() in (0, self.begun)

    def allowed(self) -> list[int]:
        """Token ids that may come next."""
        ceiling = self.current[-1][0] if self.current else 128
        if len(self.current) >= self.sampling.voices:
            return [self.step_id]
        out = [self.step_id]
        out += [self.new_ids[p] for p in self.without_parallels(self.in_range([p for p in self.new_ids if p < ceiling]))]
        out += [i for p, i in self.held_ids.items() if p < ceiling and p in self.previous]
        if not self.current and not self.marked:
            if self.fermata_id is not None and self._may_pause():
                out.append(self.fermata_id)
            if self.onsets >= END_ALLOWED_AFTER * self.sampling.length and self._may_end():
                out.append(self.end_id)
        refused = self.refused.get(tuple(self.current))
        return [t for t in out if t not in refused] if refused else out

    def quoting(self) -> bool:
        """Whether the step just completed makes a run of the training music longer than COPY_LIMIT notes;
        if so, its last new note is refused after the notes above it, and the step is chosen again."""
        fresh = sorted(p for p, is_new in self.current if is_new)
        if self.quotes is None or not fresh or self.tries >= MAX_QUOTE_TRIES:
            return False
        candidate = self.played + fresh
        if not any(self.quotes.quotes(candidate[:len(candidate) - k]) for k in range(len(fresh))):
            return False
        last = max(i for i, (_, is_new) in enumerate(self.current) if is_new)
        self.refused.setdefault(tuple(self.current[:last]), set()).add(self.new_ids[self.current[last][0]])
        self.tries += 1
        return True

    def in_range(self, pitches: list[int]) -> list[int]:
        """The candidate pitches for the next voice down inside that voice's range (Encoding.ranges) and within
        the widest span the training pieces give it from its lowest and highest notes so far, so that a long
        piece's voices do not drift apart; all of them if none is left."""
        k = len(self.current)
        if k >= len(self.enc.ranges):
            return pitches
        low, high, span = self.enc.ranges[k]
        lowest, highest = self.span[k]
        low, high = max(low, highest - span), min(high, lowest + span)
        return [p for p in pitches if low <= p <= high] or pitches

    def without_parallels(self, pitches: list[int]) -> list[int]:
        """The candidate pitches for the next voice down that make no parallel fifth or octave with a voice
        above (voices by register, against the step before); all of them if none is left."""
        before = sorted(self.previous, reverse=True)
        k = len(self.current)
        if not k or k >= len(before):
            return pitches
        q = before[k]  # where this voice was
        bad = {p for p in pitches for (above, _), r in zip(self.current, before) if parallel((r, above), (q, p))}
        return [p for p in pitches if p not in bad] or pitches

    def done(self) -> bool:
        return self.onsets >= self.sampling.length or len(self.steps) >= self.max_steps()

    def progress(self) -> float:
        return min(1.0, self.onsets / max(self.sampling.length, 1))

    def next(self, outputs, rng):
        if self.ended:
            return None
        if not self.current and self.done() and self.closing is None:
            if self._may_end() or not self.previous or len(self.steps) >= self.max_steps():
                return None
            self.closing = sorted(self.previous, reverse=True)  # the last chord is held to where it may end
        if self.closing is not None:
            if not self.current and (self._may_end() or len(self.steps) >= self.max_steps() + self.bar):
                return None
            k = len(self.current)
            if not k and not self.marked and self.fermata_id is not None and self._after_fermata():
                return self.emit(self.fermata_id)  # the held last chord goes on under the fermata it began with
            return self.emit(self.held_ids[self.closing[k]] if k < len(self.closing) else self.step_id)
        token = pick(outputs[0], self.sampling.temperature, rng, self.banned, self.allowed())
        return self.emit(token)

    def _may_pause(self) -> bool:
        """Whether a fermata may open this step: one going on, or a new one once the piece has sounded a bar
        (no chorale pauses on its first chord: its first fermata comes 3 beats or more after it)."""
        return self._after_fermata() or (self.first_step is not None
                                         and self.offset + len(self.steps) - self.first_step >= self.bar)

    def _after_fermata(self) -> bool:
        return bool(self.fermata_steps) and self.fermata_steps[-1] == len(self.steps) - 1

    def emit(self, token: int) -> np.ndarray | None:
        """Take one token into the piece; the row to feed the network next."""
        if token == self.end_id:
            self.ended = True
            return None
        if token == self.fermata_id:
            self.marked = True
            return np.array([token, self._position()], np.int32)
        if token == self.step_id:
            if self.closing is None and self.quoting():
                return Rewind(self._drop_step())
            self.played += sorted(p for p, is_new in self.current if is_new)
            self.refused, self.tries = {}, 0
            if any(is_new for _, is_new in self.current):
                if self.begun is None:
                    self.begun = self._position()
                    self.first_step = self.offset + len(self.steps)
                self.onsets += 1
            if self.marked:
                self.fermata_steps.append(len(self.steps))
            self.marked = False
            self.steps.append(self.current)
            if len(self.current) == len(self.span):  # a full step: each voice's notes so far
                self.span = [(min(lo, p), max(hi, p)) for (lo, hi), (p, _) in zip(self.span, self.current)]
            self.previous = {p for p, _ in self.current}
            self.current = []
        else:
            self.current.append(self.pitch_of[token])
        return np.array([token, self._position()], np.int32)

    def _drop_step(self) -> int:
        """Forget the current step's tokens (to choose the step again); how many were fed."""
        taken = len(self.current) + self.marked
        self.current, self.marked = [], False
        return taken

    def to_key(self) -> int:
        return -self.shift  # the model's music is in C major / A minor: back to the primer's or melody's key

    def tempo_map(self) -> TempoMap:
        return TempoMap.constant(self.context.tempo if self.context is not None else self.enc.tempo)

    def melody_steps(self) -> frozenset:
        return frozenset()

    def result(self):
        # after a primer the piece goes on from where it stopped in the bar: that much silence before it
        lead = [[] for _ in range(self.offset % self.bar)] if self.offset else []
        steps, cut = self.steps, 0
        if self.context is None:  # whole bars of silence before the first note are left out
            silent = next((i for i, step in enumerate(steps) if step), len(steps))
            cut = silent // self.bar * self.bar
            steps = steps[cut:]
        notes = self.family.decode(self.enc, lead + steps, self.meter, (), self.tempo_map(),
                                   frozenset(s + len(lead) for s in self.melody_steps()),
                                   frozenset(s - cut + len(lead) for s in self.fermata_steps if s >= cut))
        notes = notes.transposed(self.to_key()).replace(keys=self.keys)
        after = (self.offset - len(lead)) / self.enc.steps_per_beat if self.offset else None
        return Generated(notes, len(self.steps), self.ended and self.onsets < self.sampling.length, after=after)


class _Harmonizer(_Sampler):
    """The melody is the top voice, note for note (new where it starts, held where it holds); the voices
    under it are sampled, `voices` notes a step in all where the range allows. Where the melody rests,
    the voices under it may only hold what they sound."""

    def __init__(self, family, enc, sampling, melody: Notes):
        super().__init__(family, enc, sampling, melody)
        lo, hi = min(self.new_ids), max(self.new_ids)
        low, high = int(melody.pitch.min()), int(melody.pitch.max())
        # moved to C, the melody may leave the model's range: an octave down or up then (and back after)
        fits = [s for s in (self.shift, self.shift - 12, self.shift + 12) if lo <= low + s and high + s <= hi]
        if not fits:
            raise MidiError(f"The melody ({note_name(low)} to {note_name(high)}) goes outside the range this "
                            f"model knows ({note_name(lo - self.shift)} to {note_name(hi - self.shift)}).")
        self.shift = fits[0]
        top = sonorities(melody.transposed(self.shift), enc.steps_per_beat)
        self.melody = [s[0] if s else None for s in top]
        self.melody_fermatas = fermata_steps(melody, enc.steps_per_beat) if self.fermata_id is not None else set()
        self.ceiling = self._ceilings()
        self.tokens: list[int] = []  # this step's tokens so far
        self.likelihood, self.chosen = 0.0, False  # their log-probability; whether any was a choice
        self.drawn: list[tuple[int, float, list[int]]] = []  # this step's draws so far: notes, likelihood, tokens
        self.replay: list[int] = []  # the kept draw's tokens, fed again

    def tempo_map(self) -> TempoMap:
        return self.context.tempo_map  # the melody's own tempo, changes and all

    def melody_steps(self) -> frozenset:
        return frozenset(s for s, m in enumerate(self.melody) if m)

    def _ceilings(self) -> list[int]:
        """Per step, the pitch the voices under the melody stay below (the last melody note in a rest)."""
        out, last = [], 128
        for m in self.melody:
            last = m[0] if m else last
            out.append(last)
        return out

    def rows(self):
        self.positions = bar_positions(len(self.melody) + 1, self.enc.steps_per_beat, self.meter, self.enc.positions)
        return [np.array([self.index[START], self.positions[0]], np.int32)]

    def done(self) -> bool:
        return len(self.steps) >= len(self.melody)

    def progress(self) -> float:
        return min(1.0, len(self.steps) / max(len(self.melody), 1))

    def forced(self) -> int | None:
        """The melody's fermata and its note when the step has not started yet."""
        if self.current:
            return None
        if len(self.steps) in self.melody_fermatas and not self.marked:
            return self.fermata_id
        m = self.melody[len(self.steps)]
        if m is None:
            return None
        p, is_new = m
        return self.new_ids[p] if (is_new or p not in self.previous) else self.held_ids[p]

    def allowed(self):
        s = len(self.steps)
        melody = self.melody[s]
        ceiling = min(self.current[-1][0] if self.current else 128, self.ceiling[s])
        if len(self.current) >= self.sampling.voices:
            return [self.step_id]
        notes = [i for p, i in self.held_ids.items() if p < ceiling and p in self.previous]
        if melody is not None:
            notes += [self.new_ids[p] for p in self.without_parallels(self.in_range([p for p in self.new_ids
                                                                                     if p < ceiling]))]
        return notes or [self.step_id]  # voices stay until the step is full, where the range allows

    def next(self, outputs, rng):
        if self.replay:
            return self.emit(self.replay.pop(0))
        if not self.current and self.done():
            return None
        token = self.forced()
        if token is None:
            allowed = self.allowed()
            token = pick(outputs[0], self.sampling.temperature, rng, self.banned, allowed)
            if len(allowed) > 1:
                self.likelihood += log_probability(outputs[0], allowed, token)
                self.chosen = True
        self.tokens.append(token)
        if token != self.step_id:
            return self.emit(token)
        drawn = (len(self.current), self.likelihood, self.tokens)  # more voices first: a sum of fewer logs is higher
        chosen, self.tokens, self.likelihood, self.chosen = self.chosen, [], 0.0, False
        if not chosen:
            return self.emit(token)
        # the step is drawn HARMONY_CHOICES times and the one the model finds most likely is kept: plainer
        # harmony than one draw, still varied by temperature and seed
        self.drawn.append(drawn)
        taken = self._drop_step()
        if len(self.drawn) < HARMONY_CHOICES:
            return Rewind(taken)
        self.replay = list(max(self.drawn, key=lambda d: d[:2])[2])
        self.drawn = []
        return Rewind(taken)
