"""django-axes' database handler, with a cheaper lockout check.

Every HTTP Basic request asks whether its (username, address) is locked out,
even when the verified-credential cache answers for the password. Axes sums
the failures of each lockout parameter set (here per username and address,
and per address) in a query of its own. Almost always there are none, and one
query over all the sets at once says so.
"""

from __future__ import annotations

import operator
from functools import reduce

from axes.attempts import get_cool_off_threshold
from axes.conf import settings
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_parameters, get_client_username
from axes.models import AccessAttempt
from django.db.models import Q


class LockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials: dict | None = None) -> int:
        if not self._recent_attempts_exist(request, credentials):
            return 0
        # Recent failures exist: count them exactly as axes does.
        return super().get_failures(request, credentials)

    def _recent_attempts_exist(self, request, credentials: dict | None) -> bool:
        """Whether any attempt matches one of the lockout parameter sets, as
        axes' filter_user_attempts and get_user_attempts select them."""
        parameter_sets = get_client_parameters(
            get_client_username(request, credentials),
            request.axes_ip_address,
            request.axes_user_agent,
            request,
            credentials,
        )
        matching = reduce(operator.or_, (Q(**each) for each in parameter_sets))
        if settings.AXES_COOLOFF_TIME is not None:
            matching &= Q(attempt_time__gte=get_cool_off_threshold(request))
        return AccessAttempt.objects.filter(matching).exists()
