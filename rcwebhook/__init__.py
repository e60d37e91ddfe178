"""rcwebhook: Prometheus Alertmanager notifications to Rocket.Chat incoming webhooks."""

__version__ = "2.0.0"

import logging as _logging

# A library-style default: nothing is printed until the daemon sets up its handlers.
_logging.getLogger("rcwebhook").addHandler(_logging.NullHandler())
