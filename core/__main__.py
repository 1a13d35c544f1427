"""`python -m core`: the command-line interface (same functions as the pages)."""

import sys

from core.cli.main import main

sys.exit(main())
