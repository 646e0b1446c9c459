"""Shared fixtures for the unit tests (the root conftest.py sets quick mode)."""
import matplotlib
import pytest

from .device_utils import strict_meta

matplotlib.use("Agg")  # no display in tests; set here, not via MPLBACKEND, so notebooks keep inline figures


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty cache folder (STN_COURSE_CACHE) for this test: what it caches starts from nothing."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("STN_COURSE_CACHE", str(folder))
    return folder


@pytest.fixture
def meta(monkeypatch):
    """The meta device, with every torch call checked for mixed devices during the test
    (:func:`device_utils.strict_meta`): a tensor made without ``device=`` fails there."""
    with strict_meta(monkeypatch) as device:
        yield device
