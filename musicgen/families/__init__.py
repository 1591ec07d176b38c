"""Model families behind one interface (families.base.Family), registered by name.

A new family is one module implementing Family, plus one line in REGISTRY.
"""

from __future__ import annotations

from musicgen.config import ModelConfig, TrainConfig
from musicgen.errors import ConfigError
from musicgen.families.base import Encoding, Family, Generated, Windows, windows
from musicgen.families.notes_and_chords import NotesAndChords
from musicgen.families.pitch_step_duration import PitchStepDuration
from musicgen.families.polyphony import Polyphony

REGISTRY: dict[str, Family] = {f.name: f for f in (PitchStepDuration(), NotesAndChords(), Polyphony())}
FAMILIES = tuple(REGISTRY)

__all__ = ["Encoding", "Family", "Generated", "Windows", "windows", "FAMILIES", "get", "preset", "encode",
           "build_encoding"]


def get(name: str) -> Family:
    """The family called `name`; unknown names are a sentence, not a KeyError."""
    if name not in REGISTRY:
        raise ConfigError(f"Unknown model family '{name}'. Choose one of: {', '.join(FAMILIES)}.")
    return REGISTRY[name]


def preset(family: str, name: str = "default") -> tuple[ModelConfig, TrainConfig]:
    """The model and training settings of a family's named preset."""
    presets = get(family).presets
    if name not in presets:
        raise ConfigError(f"The family '{family}' has no preset '{name}'. Choose one of: {', '.join(presets)}.")
    model, train = presets[name]
    return ModelConfig(family=family, preset=name, **model), TrainConfig(**train)


def build_encoding(config: ModelConfig, pieces) -> Encoding:
    return get(config.family).build_encoding(config, pieces)


def encode(enc: Encoding, notes):
    return get(enc.family).encode(enc, notes)
