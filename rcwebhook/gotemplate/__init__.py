"""Go's text/template in pure Python, with Go's values, time and linear-time regular expressions.

A library: it knows nothing of Alertmanager or Rocket.Chat.
"""
