"""rcwebhook: Prometheus Alertmanager notifications to Rocket.Chat incoming webhooks."""

__version__ = "2.0.0"
