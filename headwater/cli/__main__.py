"""`python -m headwater.cli ...`: what the `headwater` script runs (and what a watched worker runs)."""

import sys

from headwater.cli import main

if __name__ == "__main__":  # imported (e.g. by a walk of the package), it does nothing
    sys.exit(main())
