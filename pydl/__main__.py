"""``python -m pydl train ...`` and ``python -m pydl predict ...``: see pydl/cli.py."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
