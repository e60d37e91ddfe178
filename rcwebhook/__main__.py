"""`python3 -m rcwebhook`: run the daemon."""

import sys

from .cli import main

sys.exit(main())
