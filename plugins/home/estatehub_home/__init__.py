"""Smart-home detectors (smoke …) mapped to flats, for estatehub."""
