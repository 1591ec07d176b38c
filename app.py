"""musicgen's entry point: page setup, navigation and the shared sidebar (shell.py); every page lives in pages/."""

import shell

shell.chrome().run()
