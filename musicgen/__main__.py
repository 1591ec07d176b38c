"""python -m musicgen: the command line (musicgen/cli.py)."""

import sys

from musicgen.cli import main

sys.exit(main())
