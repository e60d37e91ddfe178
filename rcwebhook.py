#!/usr/bin/env python3
"""rcwebhook: forward Prometheus Alertmanager notifications to Rocket.Chat (entry script)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rcwebhook.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
