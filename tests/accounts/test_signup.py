import pytest

from accounts.models import Account, User
from groups.models import Group
from privileges.models import Privilege
from tests.factories import PASSWORD, Api, basic

pytestmark = pytest.mark.django_db


def test_it_signs_up_with_an_account_and_makes_the_user_its_admin():
    response = Api().post(
        "/users",
        {
            "username": "alice",
            "email": "alice@example.org",
            "password": PASSWORD,
            "account_name": "acme",
        },
    )

    assert response.status_code == 201
    assert "password" not in response.json()
    user = User.objects.get(username="alice")
    account = Account.objects.get(name="acme")
    assert Group.objects.filter(account=account, name="default").exists()
    assert Privilege.objects.filter(
        user=user, account=account, level="account_admin"
    ).exists()


def test_the_new_account_is_first_in_the_overview():
    Api().post(
        "/users",
        {"username": "bob", "email": "b@example.org", "password": PASSWORD,
         "account_name": "bobs"},
    )  # fmt: skip

    response = Api(basic("bob")).get("/accounts?view=overview&include_deleted=true")

    assert response.status_code == 200
    body = response.json()
    assert body[0]["name"] == "bobs"
    assert body[0]["groups"][0]["name"] == "default"
    assert body[0]["groups"][0]["virtual_machines"] == []
