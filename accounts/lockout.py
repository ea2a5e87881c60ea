"""django-axes' database handler, with a cheaper lockout check.

Every HTTP Basic request asks whether its (username, address) is locked out,
even when the verified-credential cache answers for the password. Axes sums
the failures of each lockout parameter set (here per username and address,
and per address) in a query of its own. Almost always there are none, and one
query over all the sets at once says so.

With a cache shared by every process (CACHE_URL), each failure also leaves a
marker per parameter set for the cool-off period, and a request whose sets
carry no marker skips even that query. A per-process cache cannot say what
other processes saw, so without a shared one the query always runs.
"""

from __future__ import annotations

import hashlib
import json
import operator
from functools import reduce

from axes.attempts import get_cool_off_threshold
from axes.conf import settings
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_parameters, get_client_username
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db.models import Q


class LockoutHandler(AxesDatabaseHandler):
    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and markers_enabled():
            seconds = int(settings.AXES_COOLOFF_TIME * 3600) + 60
            cache.set_many(
                dict.fromkeys(_marker_keys(request, credentials), 1), seconds
            )

    def get_failures(self, request, credentials: dict | None = None) -> int:
        if not self._recent_attempts_exist(request, credentials):
            return 0
        # Recent failures exist: count them exactly as axes does.
        return super().get_failures(request, credentials)

    def _recent_attempts_exist(self, request, credentials: dict | None) -> bool:
        """Whether any attempt matches one of the lockout parameter sets, as
        axes' filter_user_attempts and get_user_attempts select them."""
        if markers_enabled() and not cache.get_many(_marker_keys(request, credentials)):
            return False
        parameter_sets = _parameter_sets(request, credentials)
        matching = reduce(operator.or_, (Q(**each) for each in parameter_sets))
        if settings.AXES_COOLOFF_TIME is not None:
            matching &= Q(attempt_time__gte=get_cool_off_threshold(request))
        return AccessAttempt.objects.filter(matching).exists()


def markers_enabled() -> bool:
    return bool(django_settings.CACHE_URL)


def _parameter_sets(request, credentials: dict | None) -> list[dict]:
    return get_client_parameters(
        get_client_username(request, credentials),
        request.axes_ip_address,
        request.axes_user_agent,
        request,
        credentials,
    )


def _marker_keys(request, credentials: dict | None) -> list[str]:
    keys = []
    for each in _parameter_sets(request, credentials):
        digest = hashlib.sha256(json.dumps(each, sort_keys=True).encode()).hexdigest()
        keys.append(f"corral:lockout-marker:{digest}")
    return keys
