"""Constants with their units, and the limits that keep user files from hurting us.

Model, training and sampling settings join here as frozen dataclasses.
"""

import os
from pathlib import Path

PITCH_MIN, PITCH_MAX = 0, 127  # MIDI note numbers
VELOCITY_MIN, VELOCITY_MAX = 1, 127  # velocity 0 would mean note-off
DEFAULT_VELOCITY = 80
DEFAULT_TEMPO_QPM = 100.0  # quarter notes per minute, for scores that state none
MIN_DURATION_S = 0.01  # shorter notes are lengthened to this, in seconds

# Limits on what users give us.
MAX_MIDI_BYTES = 16 * 1024 * 1024  # the largest MAESTRO file is about 1 MB
MAX_NOTES = 300_000  # notes in one file
MAX_PIECE_SECONDS = 4 * 3600.0  # longer than this means broken timing
MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_TOTAL_BYTES = 512 * 1024 * 1024  # unpacked
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # one upload or zip, packed

MIDI_SUFFIXES = (".mid", ".midi")


def data_dir() -> Path:
    """The folder that holds every dataset and cache: $MUSICGEN_DATA_DIR or ./data."""
    return Path(os.environ.get("MUSICGEN_DATA_DIR") or "data")
