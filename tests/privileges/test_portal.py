import re

import pytest
from django.test import Client

from accounts import signin
from accounts.models import ApiKey, User, hash_secret
from groups.models import Group
from panel.models import AuditEvent
from privileges.models import Privilege
from tests.factories import (
    PASSWORD,
    Api,
    SimulatedYubikey,
    basic,
    grant,
    make_account,
    make_user,
    make_vm,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    """acme, administered by alice; bob is a user with no privilege yet."""
    alice = make_user("alice")
    account = make_account("acme", owner=alice)
    web = Group.objects.create(account=account, name="web")
    return {
        "alice": alice,
        "bob": make_user("bob"),
        "account": account,
        "default": Group.objects.get(account=account, name="default"),
        "web": web,
    }


def browser(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def field_errors(response, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


def grant_form(group, username="bob", level="group_admin", **extra) -> dict:
    return {
        "username": username,
        "level": level,
        "target": f"group:{group.pk}",
        "yubikey_otp_max_age": "900",
        "ip_restrictions": "",
        **extra,
    }


# Members and grants ----------------------------------------------------------


def test_an_account_admin_grants_a_group_privilege_to_a_teammate_by_username(team):
    client = browser(team["alice"])

    response = client.post("/panel/team/acme/grant", grant_form(team["web"]))

    assert response.status_code == 302
    assert response["Location"] == "/panel/team/acme/"
    priv = Privilege.objects.get(user=team["bob"])
    assert (priv.level, priv.group) == ("group_admin", team["web"])
    assert priv.creating_username == "alice"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PRIVILEGE_GRANTED)
    assert event.account == team["account"]
    assert event.actor == team["alice"]
    page = client.get("/panel/team/acme/")
    assert page.status_code == 200
    assert re.search(
        r'"User">bob</td>\s*<td data-label="Level">group_admin<', page.content.decode()
    )


def test_a_level_not_below_your_own_is_refused_by_the_field(team):
    client = browser(team["alice"])
    form = grant_form(team["web"], level="account_admin")
    form["target"] = f"account:{team['account'].pk}"

    response = client.post("/panel/team/acme/grant", form)

    assert response.status_code == 400
    assert field_errors(response, "level") == [
        "You may only grant levels below your own (account_admin) here."
    ]
    assert not Privilege.objects.filter(user=team["bob"]).exists()
    assert not AuditEvent.objects.filter(kind="privilege_granted").exists()


def test_a_group_admin_cannot_grant_their_own_level(team):
    carol = make_user("carol")
    grant(carol, "group_admin", team["web"])

    response = browser(carol).post("/panel/team/acme/grant", grant_form(team["web"]))

    assert response.status_code == 400
    assert field_errors(response, "level")
    assert not Privilege.objects.filter(user=team["bob"]).exists()


def test_every_bad_field_is_reported_at_once(team):
    form = grant_form(team["web"], level="account_admin", ip_restrictions="nope")

    response = browser(team["alice"]).post("/panel/team/acme/grant", form)

    assert response.status_code == 400
    assert field_errors(response, "level")
    assert field_errors(response, "ip_restrictions")
    assert not Privilege.objects.filter(user=team["bob"]).exists()


def test_an_unknown_username_is_reported_by_its_field(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/grant", grant_form(team["web"], username="nobody")
    )

    assert response.status_code == 400
    assert field_errors(response, "username") == ["No user has this username."]
    assert Privilege.objects.count() == 1  # alice's own


def test_a_group_admin_sees_only_their_groups_privileges(team):
    carol = make_user("carol")
    grant(carol, "group_admin", team["web"])
    dave = make_user("dave")
    grant(dave, "group_admin", team["default"])
    vm = make_vm(team["web"], "www")
    grant(team["bob"], "vm_console", vm)

    page = browser(carol).get("/panel/team/acme/").content.decode()

    assert '"User">bob<' in page
    assert '"User">carol<' in page
    assert '"User">dave<' not in page
    assert '"User">alice<' not in page


# Revoking and conditions -------------------------------------------------------


def test_revoking_needs_a_confirmation(team):
    priv = grant(team["bob"], "group_admin", team["web"])
    client = browser(team["alice"])
    url = f"/panel/team/acme/privileges/{priv.pk}/revoke"

    asked = client.post(url, {})

    assert asked.status_code == 200
    assert "Revoke <strong>bob</strong>" in asked.content.decode()
    assert Privilege.objects.filter(pk=priv.pk).exists()

    confirmed = client.post(url, {"confirm": "yes"})

    assert confirmed.status_code == 302
    assert not Privilege.objects.filter(pk=priv.pk).exists()
    assert AuditEvent.objects.filter(kind="privilege_revoked").count() == 1


def test_bad_networks_show_the_error_by_the_field_and_change_nothing(team):
    priv = grant(team["bob"], "group_admin", team["web"])
    url = f"/panel/team/acme/privileges/{priv.pk}/conditions"

    response = browser(team["alice"]).post(
        url,
        {
            "yubikey_required": "on",
            "yubikey_otp_max_age": "300",
            "ip_restrictions": "192.0.2.0/24\nnot-a-network",
        },
    )

    assert response.status_code == 400
    assert field_errors(response, "ip_restrictions") == [
        "'not-a-network' is not an IP network (write it like 192.0.2.0/24)"
    ]
    priv.refresh_from_db()
    assert (priv.yubikey_required, priv.ip_restrictions) == (False, None)


def test_it_edits_the_conditions_of_a_privilege(team):
    priv = grant(team["bob"], "group_admin", team["web"])

    response = browser(team["alice"]).post(
        f"/panel/team/acme/privileges/{priv.pk}/conditions",
        {
            "yubikey_required": "on",
            "yubikey_otp_max_age": "300",
            "ip_restrictions": "192.0.2.0/24, 2001:db8::/32",
        },
    )

    assert response.status_code == 302
    priv.refresh_from_db()
    assert priv.yubikey_required is True
    assert priv.yubikey_otp_max_age == 300
    assert priv.ip_restrictions == ["192.0.2.0/24", "2001:db8::/32"]


def test_it_shows_no_manage_links_for_privileges_at_your_own_level(team):
    other_admin = make_user("erin")
    priv = grant(other_admin, "account_admin", team["account"])

    page = browser(team["alice"]).get("/panel/team/acme/").content.decode()

    assert f"/privileges/{priv.pk}/revoke" not in page
    assert "Not below your level" in page
    response = browser(team["alice"]).post(
        f"/panel/team/acme/privileges/{priv.pk}/revoke", {"confirm": "yes"}
    )
    assert response.status_code == 403
    assert Privilege.objects.filter(pk=priv.pk).exists()


# Creating users ------------------------------------------------------------------


def test_it_creates_a_user_into_the_account(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/users/new",
        {
            "username": "frank",
            "email": "frank@example.org",
            "password": PASSWORD,
            "level": "group_admin",
            "target": f"group:{team['web'].pk}",
        },
    )

    assert response.status_code == 302
    frank = User.objects.get(username="frank")
    assert frank.check_password(PASSWORD)
    assert Privilege.objects.filter(
        user=frank, level="group_admin", group=team["web"]
    ).exists()
    assert Api(basic("frank")).get("/accounts").json()[0]["name"] == "acme"


def test_creating_a_user_with_bad_input_creates_nobody(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/users/new",
        {
            "username": "alice",
            "email": "not-an-address",
            "password": PASSWORD,
            "level": "account_admin",
            "target": f"account:{team['account'].pk}",
        },
    )

    assert response.status_code == 400
    assert field_errors(response, "email")
    assert field_errors(response, "level")
    assert User.objects.count() == 2


def test_a_refused_grant_creates_no_user(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/users/new",
        {
            "username": "frank",
            "email": "frank@example.org",
            "password": PASSWORD,
            "level": "vm_admin",
            "target": f"group:{team['web'].pk}",
        },
    )

    assert response.status_code == 400
    assert field_errors(response, "target") == [
        "A vm_admin privilege is held on a machine."
    ]
    assert not User.objects.filter(username="frank").exists()


# API keys -------------------------------------------------------------------------


def test_an_api_key_is_shown_once_and_works(team):
    client = browser(team["alice"])

    response = client.post(
        "/panel/team/acme/api-keys",
        {
            "label": "deploy",
            "level": "group_admin",
            "target": f"group:{team['web'].pk}",
        },
    )

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    assert secret in response.content.decode()
    key = ApiKey.objects.get(user=team["alice"], label="deploy")
    assert key.key_hash == hash_secret(secret)
    priv = Privilege.objects.get(api_key=key)
    assert (priv.level, priv.group, priv.password_required) == (
        "group_admin",
        team["web"],
        False,
    )
    later = client.get("/panel/team/acme/api-keys").content.decode()
    assert "deploy" in later
    assert secret not in later
    api = Api(f"Bearer apikey.{secret}")
    assert [a["name"] for a in api.get("/accounts").json()] == ["acme"]


def test_your_own_api_key_may_get_your_own_level(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/api-keys",
        {
            "label": "ci",
            "level": "account_admin",
            "target": f"account:{team['account'].pk}",
        },
    )

    assert response.status_code == 201
    key = ApiKey.objects.get(label="ci")
    assert Privilege.objects.get(api_key=key).account == team["account"]


def test_deleting_an_api_key_needs_a_confirmation(team):
    client = browser(team["alice"])
    client.post("/panel/team/acme/api-keys", {"label": "old"})
    key = ApiKey.objects.get(label="old")
    url = f"/panel/team/acme/api-keys/{key.pk}/delete"

    assert client.post(url, {}).status_code == 200
    assert ApiKey.objects.filter(pk=key.pk).exists()
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    assert not ApiKey.objects.filter(pk=key.pk).exists()


def test_an_expiry_in_the_past_is_refused_by_its_field(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/api-keys", {"label": "x", "expires_at": "2001-01-01T00:00"}
    )

    assert response.status_code == 400
    assert field_errors(response, "expires_at") == ["must be in the future"]
    assert not ApiKey.objects.exists()


# Audit log --------------------------------------------------------------------------


def test_the_audit_log_filters_by_user_and_kind(team):
    carol = make_user("carol")
    grant(carol, "account_admin", team["account"])
    browser(team["alice"]).post("/panel/team/acme/grant", grant_form(team["web"]))
    priv = Privilege.objects.get(user=team["bob"])
    browser(carol).post(
        f"/panel/team/acme/privileges/{priv.pk}/revoke", {"confirm": "yes"}
    )
    client = browser(team["alice"])

    everything = client.get("/panel/team/acme/audit")
    by_carol = client.get("/panel/team/acme/audit?user=carol")
    grants = client.get("/panel/team/acme/audit?kind=privilege_granted")

    kinds = [e.kind for e in everything.context["page_obj"]]
    assert kinds == ["privilege_revoked", "privilege_granted", "account_created"]
    assert [e.actor_username for e in by_carol.context["page_obj"]] == ["carol"]
    assert [e.actor_username for e in grants.context["page_obj"]] == ["alice"]
    assert "127.0.0.1" in everything.content.decode()


def test_the_audit_log_pages(team):
    for _ in range(55):
        AuditEvent.objects.create(
            kind="group_changed", actor_username="alice", account=team["account"]
        )
    client = browser(team["alice"])

    first = client.get("/panel/team/acme/audit?kind=group_changed")
    second = client.get("/panel/team/acme/audit?kind=group_changed&page=2")

    assert len(first.context["page_obj"]) == 50
    assert len(second.context["page_obj"]) == 5
    assert "kind=group_changed&amp;page=2" in first.content.decode()


# Outsiders and CSRF ---------------------------------------------------------------


def test_outsiders_get_the_same_404_as_for_a_missing_account(team):
    mallory = make_user("mallory")
    make_account("evil", owner=mallory)
    client = browser(mallory)

    existing = client.get("/panel/team/acme/")
    missing = client.get("/panel/team/nosuch/")
    write = client.post("/panel/team/acme/grant", grant_form(team["web"], "mallory"))

    assert existing.status_code == missing.status_code == write.status_code == 404
    assert existing.content == missing.content.replace(b"nosuch", b"acme")
    assert not Privilege.objects.filter(user=mallory, group=team["web"]).exists()


def test_a_member_who_administers_nothing_is_told_so(team):
    vm = make_vm(team["web"], "www")
    grant(team["bob"], "vm_admin", vm)

    response = browser(team["bob"]).get("/panel/team/acme/")

    assert response.status_code == 403
    assert "admins" in response.content.decode()


def test_it_redirects_anonymous_visitors_to_sign_in(team):
    response = Client().get("/panel/team/acme/")

    assert response.status_code == 302
    assert response["Location"].startswith("/panel/login")


def test_forms_need_the_csrf_token(team):
    client = browser(team["alice"], enforce_csrf_checks=True)

    refused = client.post("/panel/team/acme/grant", grant_form(team["web"]))

    assert refused.status_code == 403
    assert not Privilege.objects.filter(user=team["bob"]).exists()
    page = client.get("/panel/team/acme/grant")
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()
    ).group(1)
    accepted = client.post(
        "/panel/team/acme/grant",
        {**grant_form(team["web"]), "csrfmiddlewaretoken": token},
    )
    assert accepted.status_code == 302
    assert Privilege.objects.filter(user=team["bob"]).exists()


# Step-up -----------------------------------------------------------------------------


@pytest.fixture
def stepping(team):
    """carol: group admin of default freely, of web only with a fresh YubiKey."""
    carol = make_user("carol")
    grant(carol, "group_admin", team["default"])
    grant(carol, "group_admin", team["web"], yubikey_required=True)
    return {
        **team,
        "carol": carol,
        "key": SimulatedYubikey(carol),
        "vm": make_vm(team["web"]),
    }


def console_form(vm) -> dict:
    return {
        "username": "bob",
        "level": "vm_console",
        "target": f"vm:{vm.pk}",
        "yubikey_otp_max_age": "900",
        "ip_restrictions": "",
    }


def test_an_unmet_yubikey_condition_asks_for_an_otp_in_place(stepping):
    client = browser(stepping["carol"])

    response = client.post("/panel/team/acme/grant", console_form(stepping["vm"]))

    assert response.status_code == 403
    body = response.content.decode()
    assert "Touch your YubiKey" in body
    assert 'name="otp"' in body
    assert f'name="target" value="vm:{stepping["vm"].pk}"' in body
    assert not Privilege.objects.filter(user=stepping["bob"]).exists()


def test_an_otp_completes_the_action(stepping):
    client = browser(stepping["carol"])
    client.post("/panel/team/acme/grant", console_form(stepping["vm"]))

    response = client.post(
        "/panel/team/acme/grant",
        {**console_form(stepping["vm"]), "otp": stepping["key"].otp()},
    )

    assert response.status_code == 302
    assert Privilege.objects.filter(
        user=stepping["bob"], virtual_machine=stepping["vm"], level="vm_console"
    ).exists()
    assert signin.SESSION_YUBIKEY_AT in client.session


def test_a_bad_otp_is_refused_by_its_field_and_does_nothing(stepping):
    client = browser(stepping["carol"])
    good = stepping["key"].otp()
    forged = good[:-1] + ("c" if good[-1] != "c" else "b")

    response = client.post(
        "/panel/team/acme/grant", {**console_form(stepping["vm"]), "otp": forged}
    )

    assert response.status_code == 403
    assert "The OTP was not accepted" in response.content.decode()
    assert not Privilege.objects.filter(user=stepping["bob"]).exists()
    assert AuditEvent.objects.filter(kind="otp_rejected").count() == 1


def test_a_page_behind_a_yubikey_condition_asks_then_opens(team):
    zoe = make_user("zoe")
    grant(zoe, "account_admin", team["account"], yubikey_required=True)
    key = SimulatedYubikey(zoe)
    client = browser(zoe)

    asked = client.get("/panel/team/acme/audit")

    assert asked.status_code == 403
    assert 'action="/panel/step-up"' in asked.content.decode()
    stepped = client.post(
        "/panel/step-up", {"otp": key.otp(), "next": "/panel/team/acme/audit"}
    )
    assert stepped.status_code == 302
    assert stepped["Location"] == "/panel/team/acme/audit"
    assert client.get("/panel/team/acme/audit").status_code == 200


def test_an_address_condition_is_explained_without_an_otp_prompt(team):
    zoe = make_user("zoe")
    grant(zoe, "account_admin", team["account"], ip_restrictions=["192.0.2.0/24"])
    SimulatedYubikey(zoe)

    response = browser(zoe).get("/panel/team/acme/", REMOTE_ADDR="198.51.100.7")

    assert response.status_code == 403
    body = response.content.decode()
    assert "your address (198.51.100.7) is not in them" in body
    assert 'name="otp"' not in body


def test_htmx_gets_only_the_form_part(team):
    response = browser(team["alice"]).post(
        "/panel/team/acme/grant",
        grant_form(team["web"], level="account_admin"),
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith("<form")
    assert "<html" not in body


def test_with_htmx_the_step_up_replaces_the_form_and_then_redirects(stepping):
    client = browser(stepping["carol"])
    htmx = {"HTTP_HX_REQUEST": "true"}

    asked = client.post("/panel/team/acme/grant", console_form(stepping["vm"]), **htmx)
    done = client.post(
        "/panel/team/acme/grant",
        {**console_form(stepping["vm"]), "otp": stepping["key"].otp()},
        **htmx,
    )

    assert asked.status_code == 200
    assert asked.content.decode().lstrip().startswith('<form class="card step-up"')
    assert done["HX-Redirect"] == "/panel/team/acme/"
    assert Privilege.objects.filter(user=stepping["bob"]).exists()
