"""Shared fixtures for the unit tests (the root conftest.py sets quick mode)."""
import matplotlib

matplotlib.use("Agg")  # no display in tests; set here, not via MPLBACKEND, so notebooks keep inline figures
