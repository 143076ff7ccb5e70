"""``python -m googlenet_utils.train``: train GoogLeNet from the command line (options: ``cli.py``)."""

import sys

from googlenet_utils.cli import main

if __name__ == "__main__":
    sys.exit(main())
