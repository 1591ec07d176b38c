#!/usr/bin/env bash
# Set everything up, then run the whole test suite (unit, app and browser tests).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --tests
exec .venv/bin/python -m pytest "$@"
