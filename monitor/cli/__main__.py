"""``python -m monitor.cli``: the same as the ``netmon`` console script."""

import sys

from monitor.cli.app import main

sys.exit(main())
