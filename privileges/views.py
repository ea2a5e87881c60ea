from rest_framework import exceptions, status
from rest_framework.response import Response

from accounts.models import Account, ApiKey, User
from accounts.views import get_account
from groups.models import Group
from groups.views import get_group
from machines.models import VirtualMachine
from panel.api import CorralView, lookup
from privileges import actions
from privileges.levels import CLUSTER_LEVELS, TARGET_FIELD, Level
from privileges.models import Privilege
from privileges.policy import ACCOUNT_ADMIN, GROUP_ADMIN, VM_ADMIN
from privileges.serializers import (
    TARGET_FIELDS,
    ConditionsSerializer,
    GrantSerializer,
    PrivilegeSerializer,
    privilege_queryset,
)

# The level needed to list the privileges held on a target.
LIST_LEVEL = {Account: ACCOUNT_ADMIN, Group: GROUP_ADMIN, VirtualMachine: VM_ADMIN}


def listing(privileges) -> Response:
    return Response(
        PrivilegeSerializer(
            privilege_queryset(privileges).order_by("id"), many=True
        ).data
    )


class PrivilegeList(CorralView):
    """`GET /privileges`: the caller's own, or `?user_id=` someone's they may see."""

    def get(self, request):
        spec = request.query_params.get("user_id")
        if not spec:
            return listing(Privilege.objects.filter(user=request.user))
        user = self.policy.find(lambda p: lookup(p.users(), spec, field="username"))
        return listing(self.policy.privileges().filter(user=user))


def target_of(priv: Privilege):
    return priv.account or priv.group or priv.virtual_machine


class PrivilegeDetail(CorralView):
    def get_privilege(self, spec: str) -> Privilege:
        if not spec.isdigit():
            raise exceptions.NotFound()
        return self.policy.find(
            lambda p: (
                privilege_queryset(p.privileges())
                .select_related("api_key")
                .filter(pk=int(spec))
                .first()
            )
        )

    def require_manage(self, priv: Privilege) -> None:
        target = target_of(priv)
        if not self.policy.can_manage_privilege(target, priv.level, priv.api_key):
            raise exceptions.PermissionDenied(
                "You may only manage privileges below your own level on this target."
            )
        if target is not None:
            self.policy.require_not_suspended(target)

    def get(self, request, privilege):
        return Response(PrivilegeSerializer(self.get_privilege(privilege)).data)

    def put(self, request, privilege):
        priv = self.get_privilege(privilege)
        self.require_manage(priv)
        changes = self.validated(ConditionsSerializer)
        if changes:
            priv = actions.change_privilege(
                priv, changes, actor=request.user, address=self.address
            )
        return Response(PrivilegeSerializer(priv).data)

    def delete(self, request, privilege):
        priv = self.get_privilege(privilege)
        self.require_manage(priv)
        actions.revoke_privilege(priv, actor=request.user, address=self.address)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserPrivileges(CorralView):
    def get(self, request, user):
        found = self.policy.find(lambda p: lookup(p.users(), user, field="username"))
        return listing(self.policy.privileges().filter(user=found))

    def post(self, request, user):
        data = self.validated(GrantSerializer)
        fields, errors = self.resolve_grant(data)
        if errors:
            return Response(errors, status=400)
        target = (
            fields.get("account")
            or fields.get("group")
            or fields.get("virtual_machine")
        )
        own_key = ApiKey.objects.filter(
            pk=data.get("api_key_id"), user=request.user
        ).first()
        if not self.policy.can_manage_privilege(target, fields["level"], own_key):
            raise exceptions.PermissionDenied(
                "You may only grant privileges below your own level on this target."
            )
        if target is not None:
            self.policy.require_not_suspended(target)

        # Any existing username may receive a grant: admins add teammates by
        # name. It is looked up only now, so that callers who may not grant
        # here cannot tell which usernames exist.
        grantee = lookup(User.objects.all(), user, field="username")
        if grantee is None:
            raise exceptions.NotFound()
        fields["user"] = grantee
        if data.get("api_key_id") is not None:
            key = ApiKey.objects.filter(pk=data["api_key_id"], user=grantee).first()
            if key is None:
                return Response(
                    {"api_key_id": ["no such API key of this user"]}, status=400
                )
            fields["api_key"] = key
            # API keys never prove a password; their privileges cannot ask for one.
            fields["password_required"] = False

        priv = actions.grant_privilege(
            actor=request.user, address=self.address, **fields
        )
        priv = privilege_queryset(Privilege.objects.filter(pk=priv.pk)).get()
        return Response(PrivilegeSerializer(priv).data, status=status.HTTP_201_CREATED)

    def resolve_grant(self, data: dict) -> tuple[dict, dict]:
        """The level, target and conditions, or {field: [message]}."""
        level = data["level"]
        wanted = TARGET_FIELD[Level(level)]
        given = [f for f in TARGET_FIELDS if data.get(f) is not None]
        fields = {
            "level": level,
            "password_required": data.get("password_required", True),
            "yubikey_required": data.get("yubikey_required", False),
            "yubikey_otp_max_age": data.get("yubikey_otp_max_age", 900),
            "ip_restrictions": data.get("ip_restrictions"),
        }
        if level in CLUSTER_LEVELS:
            if given:
                return {}, {given[0]: ["cluster privileges have no target"]}
        else:
            key = f"{wanted}_id"
            if given != [key]:
                return {}, {key: [f"a {level} privilege needs exactly this target"]}
            target = self.visible_target(wanted, data[key])
            if target is None:
                return {}, {key: ["no such target"]}
            fields[wanted] = target
        return fields, {}

    def visible_target(self, kind: str, pk: int):
        model = {"account": Account, "group": Group, "virtual_machine": VirtualMachine}[
            kind
        ]
        obj = model.objects.filter(pk=pk).first()
        if obj is None:
            return None
        try:
            # A target reached only through a privilege whose conditions fail
            # answers 403 naming them, as a path to it would.
            self.policy.require_visible(obj)
        except exceptions.NotFound:
            return None
        return obj


class AccountPrivileges(CorralView):
    def get(self, request, account):
        found = get_account(self.policy, account)
        self.policy.require(found, LIST_LEVEL[Account], write=False)
        return listing(Privilege.objects.filter(account=found))


class GroupPrivileges(CorralView):
    def get(self, request, account, group):
        found = get_group(self.policy, account, group)
        self.policy.require(found, LIST_LEVEL[Group], write=False)
        return listing(Privilege.objects.filter(group=found))
