"""Hook implementations of the hikvision plugin (filled in below)."""
