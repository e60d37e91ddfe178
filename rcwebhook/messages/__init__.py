"""Messages: Alertmanager's notification parsed, routed, and rendered into Rocket.Chat messages."""
