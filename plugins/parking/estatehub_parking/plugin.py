"""Hook implementations of the parking plugin (filled in below)."""
