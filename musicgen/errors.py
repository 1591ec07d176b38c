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


class StorageError(MusicgenError):
    """Something could not be written: the disk is full, or the folder is read-only."""


def storage_error(path, error: OSError) -> StorageError:
    """The sentence for a failed write of `path`."""
    import errno

    where = getattr(path, "name", None) or str(path)
    if error.errno == errno.ENOSPC or error.errno == errno.EDQUOT:
        return StorageError(f"The disk is full, so {where} could not be written; free some space and try again.")
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(f"{where} could not be written: its folder is read-only or not yours.")
    return StorageError(f"{where} could not be written ({error.strerror or error}).")


class TrainingError(MusicgenError):
    """Training cannot start or go on (too little data, a stopped run that cannot resume)."""
