#!/usr/bin/env bash
# Set everything up, then open the app in the browser (streamlit run app.py).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/streamlit run app.py "$@"
