from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status
from rest_framework.response import Response

from accounts.models import Account, User
from accounts.views import get_account
from groups.models import Group
from groups.views import get_group
from machines.models import VirtualMachine
from panel.api import CorralView, is_id, lookup
from panel.openapi import api_doc
from privileges import actions
from privileges.grants import require_grantable, resolve_grant
from privileges.models import Privilege
from privileges.policy import ACCOUNT_ADMIN, GROUP_ADMIN, VM_ADMIN
from privileges.serializers import (
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

    @api_doc(
        responses=PrivilegeSerializer(many=True),
        parameters=[OpenApiParameter("user_id", str, description="A user id or name.")],
    )
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
        if not is_id(spec):
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
        self.policy.require_manage_privilege(target, priv.level, priv.api_key)
        if target is not None:
            self.policy.require_not_suspended(target)

    @api_doc(responses=PrivilegeSerializer)
    def get(self, request, privilege):
        return Response(PrivilegeSerializer(self.get_privilege(privilege)).data)

    @api_doc(request=ConditionsSerializer, responses=PrivilegeSerializer)
    def put(self, request, privilege):
        priv = self.get_privilege(privilege)
        self.require_manage(priv)
        changes = self.validated(ConditionsSerializer)
        if changes:
            priv = actions.change_privilege(
                priv, changes, actor=request.user, address=self.address
            )
        return Response(PrivilegeSerializer(priv).data)

    @api_doc(responses={204: None})
    def delete(self, request, privilege):
        priv = self.get_privilege(privilege)
        self.require_manage(priv)
        actions.revoke_privilege(priv, actor=request.user, address=self.address)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserPrivileges(CorralView):
    @api_doc(responses=PrivilegeSerializer(many=True))
    def get(self, request, user):
        found = self.policy.find(lambda p: lookup(p.users(), user, field="username"))
        return listing(self.policy.privileges().filter(user=found))

    @api_doc(request=GrantSerializer, responses={201: PrivilegeSerializer})
    def post(self, request, user):
        data = self.validated(GrantSerializer)
        # Any existing username may receive a grant: admins add teammates by
        # name. A missing one answers 404 only after the right to grant here
        # is checked, so that others cannot tell which usernames exist.
        grantee = lookup(User.objects.all(), user, field="username")
        fields, errors = resolve_grant(self.policy, grantee, data)
        if errors:
            return Response(errors, status=400)
        require_grantable(self.policy, fields)
        if grantee is None:
            raise exceptions.NotFound()
        priv = actions.grant_privilege(
            actor=request.user, address=self.address, **fields
        )
        priv = privilege_queryset(Privilege.objects.filter(pk=priv.pk)).get()
        return Response(PrivilegeSerializer(priv).data, status=status.HTTP_201_CREATED)


class AccountPrivileges(CorralView):
    @api_doc(responses=PrivilegeSerializer(many=True))
    def get(self, request, account):
        found = get_account(self.policy, account)
        self.policy.require(found, LIST_LEVEL[Account], write=False)
        return listing(Privilege.objects.filter(account=found))


class GroupPrivileges(CorralView):
    @api_doc(responses=PrivilegeSerializer(many=True))
    def get(self, request, account, group):
        found = get_group(self.policy, account, group)
        self.policy.require(found, LIST_LEVEL[Group], write=False)
        return listing(Privilege.objects.filter(group=found))
