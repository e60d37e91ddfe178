"""Delivery: every alert state posted to Rocket.Chat once, in order, and remembered across restarts."""
