"""``python -m deepsearch_stream serve ...``: the same as ``deepsearch-stream serve``."""

import sys

from deepsearch_stream.cli import main

sys.exit(main())
