"""The errors a user may see: each message is a sentence a musician understands."""


class MusicgenError(Exception):
    """Something the user can fix or should know; str(error) is the whole message."""


class MidiError(MusicgenError):
    """A MIDI file that cannot be used (empty, not MIDI, corrupt, no notes, too large)."""


class DatasetError(MusicgenError):
    """A dataset that cannot be made, found or read (bad name, unsafe zip, nothing usable)."""


class ConfigError(MusicgenError):
    """A setting out of range, or an unknown family, preset or optimizer."""


class ModelError(MusicgenError):
    """A model folder that is missing, incomplete or made by something else."""


class TrainingError(MusicgenError):
    """Training cannot start or go on (too little data, a stopped run that cannot resume)."""
