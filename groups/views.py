from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status
from rest_framework.response import Response

from accounts.models import Account
from accounts.views import get_account
from groups import actions
from groups.models import Group
from groups.serializers import (
    GroupOverviewSerializer,
    GroupSerializer,
    GroupWriteSerializer,
)
from machines.serializers import visible_vms_prefetch
from panel.api import CorralView, is_id, is_overview, lookup, query_flag
from panel.openapi import OVERVIEW, api_doc
from privileges.levels import Level
from privileges.policy import CLUSTER_ADMIN, Policy


def get_group(policy: Policy, account_spec: str, group_spec: str) -> Group:
    # Only the group's visibility is asked (it implies the account's), so a
    # condition the account would need is named only for groups it opens.
    account = lookup(Account.objects.all(), account_spec)
    group = lookup(
        Group.objects.filter(account=account).select_related("account"), group_spec
    )
    if account is None or group is None:
        raise exceptions.NotFound()
    policy.require_visible(group)
    return group


def with_visible_vms(policy: Policy, groups, include_deleted: bool):
    return groups.prefetch_related(visible_vms_prefetch(policy, include_deleted))


def group_data(policy: Policy, request, groups, many: bool):
    if is_overview(request):
        groups = with_visible_vms(
            policy, groups, query_flag(request, "include_deleted")
        )
        return GroupOverviewSerializer(groups if many else groups.get(), many=many).data
    return GroupSerializer(groups if many else groups.get(), many=many).data


class AccountGroupList(CorralView):
    @api_doc(responses=GroupOverviewSerializer(many=True), parameters=OVERVIEW)
    def get(self, request, account):
        found = get_account(self.policy, account)
        groups = self.policy.groups().filter(account=found).order_by("id")
        return Response(group_data(self.policy, request, groups, many=True))

    @api_doc(request=GroupWriteSerializer, responses={201: GroupSerializer})
    def post(self, request, account):
        found = get_account(self.policy, account)
        self.policy.require(found, Level.ACCOUNT_ADMIN)
        data = self.validated(GroupWriteSerializer)
        if "name" not in data:
            return Response({"name": ["is required"]}, status=400)
        if "vlan_num" in data:
            self.policy.require_cluster(CLUSTER_ADMIN)
        try:
            group = actions.create_group(
                found, data["name"], actor=request.user, address=self.address
            )
        except actions.GroupNameTaken:
            return Response({"name": ["is already taken in this account"]}, status=400)
        if data.get("vlan_num") is not None:
            actions.update_group(
                group,
                {"vlan_num": data["vlan_num"]},
                actor=request.user,
                address=self.address,
            )
        return Response(GroupSerializer(group).data, status=status.HTTP_201_CREATED)


class AccountGroupDetail(CorralView):
    @api_doc(responses=GroupOverviewSerializer, parameters=OVERVIEW)
    def get(self, request, account, group):
        found = get_group(self.policy, account, group)
        return Response(
            group_data(
                self.policy, request, Group.objects.filter(pk=found.pk), many=False
            )
        )

    @api_doc(request=GroupWriteSerializer, responses=GroupSerializer)
    def put(self, request, account, group):
        found = get_group(self.policy, account, group)
        changes = self.validated(GroupWriteSerializer)
        if "vlan_num" in changes:
            self.policy.require(found, CLUSTER_ADMIN)
        else:
            self.policy.require(found, Level.GROUP_ADMIN)
        if changes.get("name") == "default" or (
            found.name == "default" and changes.get("name", "default") != "default"
        ):
            return Response(
                {
                    "name": [
                        "the default group keeps its name, and no other may take it"
                    ]
                },
                status=400,
            )
        try:
            found = actions.update_group(
                found, changes, actor=request.user, address=self.address
            )
        except actions.GroupNameTaken:
            return Response({"name": ["is already taken in this account"]}, status=400)
        return Response(GroupSerializer(found).data)

    @api_doc(responses={204: None})
    def delete(self, request, account, group):
        found = get_group(self.policy, account, group)
        self.policy.require(found, Level.ACCOUNT_ADMIN)
        if found.name == "default":
            return Response(
                {"group": ["the default group cannot be deleted"]}, status=400
            )
        try:
            actions.delete_group(found, actor=request.user, address=self.address)
        except actions.GroupNotEmpty:
            return Response(
                {"group": ["still holds virtual machines; purge or move them first"]},
                status=400,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupList(CorralView):
    """Read-only `GET /groups[?account_id=id-or-name]`."""

    @api_doc(
        responses=GroupOverviewSerializer(many=True),
        parameters=[
            *OVERVIEW,
            OpenApiParameter("account_id", str, description="An account id or name."),
        ],
    )
    def get(self, request):
        groups = self.policy.groups().order_by("id")
        spec = request.query_params.get("account_id")
        if spec:
            groups = groups.filter(account=get_account(self.policy, spec))
        return Response(group_data(self.policy, request, groups, many=True))


class GroupDetail(CorralView):
    @api_doc(responses=GroupOverviewSerializer, parameters=OVERVIEW)
    def get(self, request, group):
        if not is_id(group):
            raise exceptions.NotFound()
        found = Group.objects.filter(pk=int(group)).select_related("account").first()
        if found is None:
            raise exceptions.NotFound()
        self.policy.require_visible(found)
        return Response(
            group_data(
                self.policy, request, Group.objects.filter(pk=found.pk), many=False
            )
        )
