"""`python -m leeward ...` is the `leeward` CLI."""
import sys

from .cli import main

sys.exit(main())
