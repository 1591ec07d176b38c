"""The errors a user may see: each message is a sentence a musician understands."""


class MusicgenError(Exception):
    """Something the user can fix or should know; str(error) is the whole message."""


class MidiError(MusicgenError):
    """A MIDI file that cannot be used (empty, not MIDI, corrupt, no notes, too large)."""


class DatasetError(MusicgenError):
    """A dataset that cannot be made, found or read (bad name, unsafe zip, nothing usable)."""
