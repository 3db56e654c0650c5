"""``python -m deepsearch_stream serve ...``: the same as ``deepsearch-stream serve``."""

import sys

from deepsearch_stream.cli import main

if __name__ == "__main__":
    sys.exit(main())
