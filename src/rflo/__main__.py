"""``python -m rflo``: the command line."""

import sys

from rflo.cli import main

sys.exit(main())
