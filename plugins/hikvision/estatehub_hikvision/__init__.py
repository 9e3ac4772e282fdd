"""Hikvision ISAPI adapters (ANPR gates) for estatehub."""
