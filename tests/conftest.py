import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The verified-credential cache and axes state must not leak between tests."""
    cache.clear()
    yield
    cache.clear()
