"""Run the CLI as ``python -m twinme_lab``."""

import sys

from .cli import main

sys.exit(main())
