"""``python -m legwatch``: the same as the ``legwatch`` command."""

import sys

from legwatch.cli import main

sys.exit(main())
