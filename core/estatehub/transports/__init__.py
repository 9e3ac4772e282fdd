"""Inbound and outbound transports: MQTT, HTTP webhooks, capture and replay."""
