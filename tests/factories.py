"""Building blocks for tests: users, accounts, machines, privileges, clients."""

import base64
import itertools
import json
import os

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


class SimulatedYubikey:
    """A YubiKey enrolled for local validation; `otp()` presses its button."""

    def __init__(self, user: User):
        from yubiotp.modhex import modhex
        from yubiotp.otp import YubiKey

        from accounts.otp import add_local_yubikey

        self.aes_key = os.urandom(16)
        self.private_id = os.urandom(6)
        self.public_id = modhex(os.urandom(6)).decode()
        self.device = add_local_yubikey(
            user,
            public_id=self.public_id,
            aes_key=self.aes_key.hex(),
            private_id=self.private_id.hex(),
        )
        self.button = YubiKey(uid=self.private_id, session=1)

    def otp(self) -> str:
        from yubiotp.otp import encode_otp

        otp = self.button.generate()
        return encode_otp(otp, self.aes_key, self.public_id.encode()).decode()


def ssh_public_key(comment: str = "") -> str:
    """A freshly generated OpenSSH ed25519 public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return f"{line} {comment}".strip()


def make_api_key(user: User, label: str = "", expires_at=None):
    """An API key of `user` and its secret (shown once, like the API does)."""
    return actions.create_api_key(user, label=label, expires_at=expires_at, actor=user)


def bearer_api_key(secret: str) -> str:
    return f"Bearer apikey.{secret}"


def make_infrastructure(ipv4: str = "192.0.2.0/24", ipv6: str = "2001:db8::/64"):
    """A simulated head, a tail with one pool per storage grade and a backup
    pool, and VLAN 1 (the default VLAN of every group without its own) with
    an IPv4 and an IPv6 range."""
    from types import SimpleNamespace

    from machines.models import Head, IpRange, StorageGrade, StoragePool, Tail, Vlan

    n = next(_seq)
    head = Head.objects.create(
        label=f"head{n}", uri="simulated://", cnc_address="10.0.0.1"
    )
    tail = Tail.objects.create(label=f"tail{n}")
    pools = {
        grade: StoragePool.objects.create(
            tail=tail,
            label=f"{tail.label}-{grade}",
            libvirt_pool=grade,
            grade=grade,
            size=8 * 1024 * 1024,
        )
        for grade in StorageGrade.objects.values_list("name", flat=True)
    }
    backup_pool = StoragePool.objects.create(
        tail=tail,
        label=f"{tail.label}-backup",
        libvirt_pool="backup",
        grade="iceberg",
        size=8 * 1024 * 1024,
        backup=True,
    )
    vlan, _ = Vlan.objects.get_or_create(num=1)
    ranges = [IpRange.objects.create(vlan=vlan, spec=spec) for spec in (ipv4, ipv6)]
    return SimpleNamespace(
        head=head, tail=tail, pools=pools, backup_pool=backup_pool, vlan=vlan,
        ranges=ranges,
    )  # fmt: skip


def snapshot() -> dict:
    """Every row of the tables an API write may touch, to show nothing changed.

    Take it after a first signed-in request: signing in stamps `last_login`.
    """
    from django.apps import apps

    labels = [
        "accounts.User",
        "accounts.Account",
        "accounts.ApiKey",
        "accounts.SessionToken",
        "groups.Group",
        "machines.VirtualMachine",
        "machines.Distribution",
        "machines.StorageGrade",
        "machines.Zone",
        "machines.HardwareProfile",
        "machines.Keymap",
        "machines.SendKey",
        "privileges.Privilege",
        "panel.AuditEvent",
    ]
    return {
        label: list(apps.get_model(label).objects.order_by("pk").values())
        for label in labels
    }


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
