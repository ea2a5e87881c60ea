"""Repeated HTTP Basic requests skip hashing, but nothing else: lockout,
second-factor demands and the privileges of API keys still apply."""

import pytest
from django.conf import settings

from accounts import actions
from groups.models import Group
from tests.factories import Api, as_user, basic, grant, make_account, make_user, make_vm

pytestmark = pytest.mark.django_db


def test_a_locked_out_address_is_refused_even_with_cached_credentials():
    user = make_user()
    account = make_account(owner=user)
    api = as_user(user)
    assert api.get(f"/accounts/{account.name}").status_code == 200

    intruder = Api(basic(user.username, "wrong guess"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert intruder.get("/accounts").status_code == 401
    assert intruder.get("/accounts").status_code == 403  # this one locks
    response = api.get(f"/accounts/{account.name}")

    # A lockout is 403 saying when to retry, never "Bad login credentials".
    assert response.status_code == 403
    assert "locked" in response.json()["detail"]
    assert "Bad login credentials" not in response.json()["detail"]


def test_cached_credentials_still_answer_after_a_few_failures():
    user = make_user()
    account = make_account(owner=user)
    api = as_user(user)
    api.get(f"/accounts/{account.name}")

    Api(basic(user.username, "wrong guess")).get("/accounts")
    response = api.get(f"/accounts/{account.name}")

    assert response.status_code == 200


@pytest.mark.parametrize("target", ["account", "group", "virtual_machine"])
def test_a_demanded_second_factor_applies_to_cached_credentials(target):
    user = make_user()
    account = make_account()
    group = Group.objects.get(account=account)
    level, obj = {
        "account": ("account_admin", account),
        "group": ("group_admin", group),
        "virtual_machine": ("vm_admin", make_vm(group)),
    }[target]
    grant(user, level, obj)
    api = as_user(user)
    assert api.get("/accounts").status_code == 200

    account.require_second_factor = True
    account.save(update_fields=["require_second_factor"])
    listing = api.get("/accounts")
    response = api.get(f"/accounts/{account.name}")

    # The account's demand is a condition on its privileges: the cached
    # sign-in still works, but lends nothing in that account.
    assert listing.status_code == 200
    assert listing.json() == []
    assert response.status_code == 403
    assert "second factor" in response.json()["detail"]


def test_an_api_keys_privilege_in_a_demanding_account_lends_basic_nothing():
    user = make_user()
    account = make_account()
    account.require_second_factor = True
    account.save(update_fields=["require_second_factor"])
    key, _secret = actions.create_api_key(user, label="", expires_at=None, actor=user)
    grant(user, "account_admin", account, api_key=key, password_required=False)

    response = as_user(user).get("/accounts")

    assert response.status_code == 200
    assert response.json() == []


def test_basic_requests_do_not_get_the_privileges_of_the_users_api_keys():
    user = make_user()
    account = make_account()
    key, _secret = actions.create_api_key(user, label="", expires_at=None, actor=user)
    grant(user, "account_admin", account, api_key=key, password_required=False)
    api = as_user(user)

    for _ in range(2):  # signing in, then from the credential cache
        assert api.get(f"/accounts/{account.name}").status_code == 404
    assert api.get("/accounts").json() == []
