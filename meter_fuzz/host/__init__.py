"""Host-only extras of the fuzz targets (differential checks, structure-aware mutators, seed generators); see
meter_fuzz/targets.py."""
