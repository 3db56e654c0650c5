"""``python -m deepsearch_stream.corpus``: export the corpus and print its directory."""

import sys

from .cli import main

# Guarded: tools that import every module (stubtest) must not run the command.
if __name__ == "__main__":
    sys.exit(main())
