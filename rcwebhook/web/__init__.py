"""The web side: the HTTP server, who may connect and ask, the webhook pipeline and the status page."""
