"""``python -m deepsearch_stream.corpus``: export the corpus and print its directory."""

import sys

from .cli import main

sys.exit(main())
