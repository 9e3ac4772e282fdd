"""Hook implementations of the home plugin (filled in below)."""
