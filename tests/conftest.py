import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The verified-credential cache and axes state must not leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _seeded_definitions(request):
    """Transactional tests flush the database, seeded definitions included;
    put the defaults back so every test sees what a migrated database has."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")
    from machines.definitions import seed_defaults

    seed_defaults()
    yield
