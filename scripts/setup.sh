#!/usr/bin/env bash
# Everything the app needs, made idempotent: .venv with the pinned packages and the FluidSynth library.
# With --tests also Chromium for the browser test. Run by run.sh and test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1; fi
}
apt_ready=""
apt_install() {  # apt_install PACKAGE...: installs with apt when it is there and we may use it
  command -v apt-get >/dev/null 2>&1 && as_root true 2>/dev/null || return 1
  if [ -z "$apt_ready" ]; then as_root apt-get update -qq >/dev/null || return 1; apt_ready=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Python 3.10-3.13 with venv (TensorFlow 2.21 supports these).
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  say "installing Python 3"; apt_install python3 python3-venv ||
    { say "Python 3 is missing: install it (sudo apt-get install python3 python3-venv) and run this again."; exit 1; }
fi
if ! "$PY" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))'; then
  say "musicgen needs Python 3.10 to 3.13 (TensorFlow's range); $("$PY" --version) was found. Set PYTHON=python3.11 or similar."
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3-venv ||
      { say "Python's venv module is missing: install it (sudo apt-get install python3-venv) and run this again."; exit 1; }
    "$PY" -m venv .venv
  fi
fi

# Pinned packages, installed again only when requirements.txt changes.
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements 2>/dev/null)" != "$want" ]; then
  say "installing Python packages into .venv (about a minute the first time)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > .venv/.requirements
fi

# FluidSynth's C library: pyfluidsynth needs it for real audio (Debian: libfluidsynth3, with a SoundFont).
if ! .venv/bin/python -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("fluidsynth") is None)'; then
  say "installing the FluidSynth library for audio"
  apt_install libfluidsynth3 ||
    say "could not install FluidSynth (needs root and apt): sound falls back to a plain synthesizer. To fix: sudo apt-get install libfluidsynth3"
fi

# A good General MIDI SoundFont (FluidR3, about 140 MB); without it the small TimGM6mb plays.
if [ ! -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
  say "installing the FluidR3 SoundFont for a better piano (about 120 MB download)"
  apt_install fluid-soundfont-gm ||
    say "could not install the FluidR3 SoundFont; the smaller TimGM6mb one plays. To fix: sudo apt-get install fluid-soundfont-gm"
fi

# The built-in corpora, made once from music21's scores (a minute or two), so the app's first visit is quick.
if [ "${1:-}" != "--tests" ]; then
  .venv/bin/python -m musicgen datasets --build >/dev/null ||
    say "could not make the built-in corpora now; the app makes them on first use"
fi

# Chromium for the end-to-end browser test (Debian's build; browsers are never downloaded).
if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium for the browser test (about a minute)"
  apt_install chromium fonts-dejavu-core ||
    say "could not install Chromium (needs root and apt): the browser test will be skipped. To fix: sudo apt-get install chromium"
fi
exit 0
