"""Vehicle gates, plate recognition and parking fees for estatehub."""
