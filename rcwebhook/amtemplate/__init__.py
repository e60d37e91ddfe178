"""Alertmanager's template layer: its data (.Alerts, .CommonLabels, ...), its functions, its versions."""
