"""Helpers for testing estatehub and its plugins (a throw-away Mosquitto broker, …)."""
