"""Building blocks for tests: users, accounts, machines, privileges, clients."""

import base64
import itertools
import json

from django.test import Client

from accounts import actions
from accounts.models import Account, User
from groups.models import Group
from machines.models import VirtualMachine
from privileges.models import Privilege

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_user(username: str | None = None, **fields) -> User:
    username = username or f"user{next(_seq)}"
    user = User(username=username, email=f"{username}@example.org", **fields)
    user.set_password(PASSWORD)
    user.save()
    return user


def make_account(name: str | None = None, owner: User | None = None) -> Account:
    name = name or f"account{next(_seq)}"
    if owner is not None:
        return actions.create_account(name=name, owner=owner)
    account = Account.objects.create(name=name)
    Group.objects.create(account=account, name="default")
    return account


def make_vm(group: Group, name: str | None = None, **fields) -> VirtualMachine:
    return VirtualMachine.objects.create(
        group=group, name=name or f"vm{next(_seq)}", **fields
    )


def grant(user: User, level: str, target=None, **conditions) -> Privilege:
    fields = {"user": user, "level": level, **conditions}
    if target is not None:
        kind = {Account: "account", Group: "group", VirtualMachine: "virtual_machine"}
        fields[kind[type(target)]] = target
    return Privilege.objects.create(**fields)


def basic(username: str, password: str = PASSWORD) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


class Api:
    """A JSON client that speaks like the BigV client."""

    def __init__(self, authorization: str | None = None, **headers):
        self.client = Client()
        self.headers = dict(headers)
        if authorization:
            self.headers["HTTP_AUTHORIZATION"] = authorization

    def _call(self, method: str, path: str, body=None, **extra):
        kwargs = {**self.headers, **extra}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path, **extra):
        return self._call("get", path, **extra)

    def post(self, path, body=None, **extra):
        return self._call("post", path, body if body is not None else {}, **extra)

    def put(self, path, body=None, **extra):
        return self._call("put", path, body if body is not None else {}, **extra)

    def delete(self, path, **extra):
        return self._call("delete", path, **extra)


def as_user(user: User, **headers) -> Api:
    return Api(basic(user.username), **headers)


def make_filled_account(
    owner: User | None = None, groups: int = 2, vms_per_group: int = 2
) -> Account:
    """An account with `groups` groups besides `default`, and `vms_per_group`
    machines in each of them, `default` included."""
    account = make_account(owner=owner)
    for _ in range(groups):
        Group.objects.create(account=account, name=f"group{next(_seq)}")
    for group in Group.objects.filter(account=account):
        for _ in range(vms_per_group):
            make_vm(group)
    return account
