"""Allow `python -m semmatch` and `torchrun -m semmatch`."""

import sys

from semmatch.cli import main

sys.exit(main())
