from django.db import transaction
from django.db.models import Prefetch
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts import actions
from accounts.models import Account, User
from accounts.serializers import (
    AccountCreateSerializer,
    AccountOverviewSerializer,
    AccountSerializer,
    AccountUpdateSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyOverviewSerializer,
    ApiKeySerializer,
    SignupSerializer,
    UserDetailSerializer,
    UserPublicSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from groups.models import Group
from groups.serializers import GroupOverviewSerializer
from machines.serializers import visible_vms_prefetch
from panel import audit
from panel.api import CorralView, bad_request, is_overview, lookup, query_flag
from panel.models import AuditEvent
from panel.openapi import OVERVIEW, api_doc
from privileges.levels import Level
from privileges.models import Privilege
from privileges.policy import ACCOUNT_ADMIN, CLUSTER_ADMIN, Policy
from privileges.serializers import privilege_queryset

# Users --------------------------------------------------------------------

# What only a password-proven sign-in may change on a user.
KEY_PROOF_FIELDS = frozenset({"password", "require_second_factor", "approved"})


class UserProfileView(CorralView):
    def profile(self, user: User, full):
        """`full` for the user themselves and cluster admins; teammates see
        only the id and the username."""
        if user.pk == self.request.user.pk or self.policy.is_cluster_admin():
            return full(user)
        return UserPublicSerializer(user)


class UserList(UserProfileView):
    permission_classes = [AllowAny]

    @api_doc(
        responses=UserSerializer(many=True),
        description="Yourself and the members of what you administer; only "
        "you and cluster admins see e-mail and authorized_keys.",
    )
    def get(self, request):
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        users = self.policy.users().order_by("id")
        return Response([self.profile(u, UserSerializer).data for u in users])

    @api_doc(
        request=SignupSerializer,
        responses={201: UserSerializer},
        description="Sign up (no credentials), or create a user as a signed-in admin.",
    )
    def post(self, request):
        """Sign up, or a cluster admin adds a user (approved at once)."""
        admin = request.user.is_authenticated
        if admin:
            # Creating a user for someone else is a cluster admin's job; anyone
            # else could bypass closed sign-up or its approval step.
            self.policy.require_cluster(Level.CLUSTER_ADMIN)
        try:
            approved = actions.new_user_approved(by_cluster_admin=admin)
        except actions.SignUpClosed as closed:
            raise exceptions.PermissionDenied(str(closed)) from None
        data = self.validated(SignupSerializer)
        try:
            user = actions.create_user(
                **data,
                approved=approved,
                actor=request.user if request.user.is_authenticated else None,
                address=self.address,
            )
        except actions.NameTaken as taken:
            # Someone claimed the name between validation and saving.
            return bad_request(taken.field, "is already taken")
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetail(UserProfileView):
    def get_user(self, spec: str) -> User:
        return self.policy.find(lambda p: lookup(p.users(), spec, field="username"))

    def require_self_or_admin(self, user: User) -> None:
        """Others may read a user (account admins see their members), but only
        the user and cluster admins may change them."""
        if user.pk != self.request.user.pk:
            self.policy.require_cluster(Level.CLUSTER_ADMIN)

    @api_doc(
        responses=UserDetailSerializer,
        description="Teammates see only `id` and `username`; the user and "
        "cluster admins see everything.",
    )
    def get(self, request, user):
        found = self.get_user(user)
        return Response(self.profile(found, UserDetailSerializer).data)

    def refuse_api_key(self, what: str) -> None:
        # A leaked key must not take over its owner: no new password, no
        # second factor switched off, no deleted user. It may still manage
        # authorized_keys, as the BigV client's `add key` does with a key.
        if self.policy.ctx.api_key is not None:
            raise exceptions.PermissionDenied(
                f"An API key cannot {what}; sign in with your password."
            )

    @api_doc(request=UserUpdateSerializer, responses=UserDetailSerializer)
    def put(self, request, user):
        found = self.get_user(user)
        self.require_self_or_admin(found)
        changes = self.validated(UserUpdateSerializer)
        guarded = sorted(KEY_PROOF_FIELDS & set(changes))
        if guarded:
            self.refuse_api_key(f"change {', '.join(guarded)}")
        if "approved" in changes:
            self.policy.require_cluster(Level.CLUSTER_ADMIN)
        actions.update_user(found, changes, actor=request.user, address=self.address)
        return Response(UserDetailSerializer(found).data)

    @api_doc(responses={204: None})
    def delete(self, request, user):
        found = self.get_user(user)
        self.require_self_or_admin(found)
        self.refuse_api_key("delete a user")
        actions.delete_user(found, actor=request.user, address=self.address)
        return Response(status=status.HTTP_204_NO_CONTENT)


# API keys -----------------------------------------------------------------


class ApiKeyList(CorralView):
    def keys(self):
        return self.policy.api_keys().select_related("user").order_by("id")

    def refuse_api_keys(self) -> None:
        # A leaked key must not mint or remove credentials of its owner.
        if self.policy.ctx.api_key is not None:
            raise exceptions.PermissionDenied(
                "An API key cannot create or delete API keys; sign in with "
                "your password."
            )

    @api_doc(responses=ApiKeyOverviewSerializer(many=True), parameters=OVERVIEW[:1])
    def get(self, request):
        keys = self.keys()
        if is_overview(request):
            keys = keys.prefetch_related(
                Prefetch(
                    "privileges", queryset=privilege_queryset(Privilege.objects.all())
                )
            )
            return Response(ApiKeyOverviewSerializer(keys, many=True).data)
        return Response(ApiKeySerializer(keys, many=True).data)

    @api_doc(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        self.refuse_api_keys()
        data = self.validated(ApiKeyCreateSerializer)
        owner = request.user
        user_id = data.get("user_id")
        if user_id is not None and user_id != request.user.pk:
            self.policy.require_cluster(Level.CLUSTER_ADMIN)
            owner = User.objects.filter(pk=user_id).first()
            if owner is None:
                return bad_request("user_id", "no such user")
        key, secret = actions.create_api_key(
            owner,
            label=data.get("label", ""),
            expires_at=data.get("expires_at"),
            actor=request.user,
            address=self.address,
        )
        body = ApiKeySerializer(key).data
        # The only time the key is shown: only its digest is kept.
        body["api_key"] = secret
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetail(ApiKeyList):
    # Inherits the listing's scope, not its POST: keys are created on /api_keys.
    http_method_names = ["get", "delete", "head", "options"]

    def get_key(self, spec):
        # Through `find`: a cluster admin whose privilege's condition fails
        # gets 403 naming it for someone else's key, as for users.
        return self.policy.find(
            lambda p: lookup(
                p.api_keys().select_related("user").order_by("id"), spec, field="label"
            )
        )

    @api_doc(responses=ApiKeyOverviewSerializer)
    def get(self, request, key):
        return Response(ApiKeyOverviewSerializer(self.get_key(key)).data)

    @api_doc(responses={204: None})
    def delete(self, request, key):
        found = self.get_key(key)
        self.refuse_api_keys()
        actions.delete_api_key(found, actor=request.user, address=self.address)
        return Response(status=status.HTTP_204_NO_CONTENT)


# Accounts -----------------------------------------------------------------


def overview_queryset(policy: Policy, accounts, include_deleted: bool):
    """Accounts with the groups and machines the caller may see, prefetched
    in a fixed number of queries however many accounts there are."""
    groups = policy.groups().prefetch_related(
        visible_vms_prefetch(policy, include_deleted)
    )
    return accounts.prefetch_related(
        Prefetch("groups", queryset=groups, to_attr="visible_groups")
    )


def account_data(account: Account, overview: bool) -> dict:
    data = AccountSerializer(account).data
    if overview:
        data["groups"] = GroupOverviewSerializer(account.visible_groups, many=True).data
    return data


def own_account_first(accounts: list[Account], policy: Policy) -> list[Account]:
    """The caller's own account leads: the oldest where they are account admin,
    else the first they can reach. BigV clients take the first as default."""
    admin_of = [
        a for a in accounts if policy.scope.accounts.get(a.id, 0) >= ACCOUNT_ADMIN
    ]
    if not admin_of:
        return accounts
    own = min(admin_of, key=lambda a: (a.created_at, a.id))
    return [own, *(a for a in accounts if a.id != own.id)]


class AccountList(CorralView):
    @api_doc(responses=AccountOverviewSerializer(many=True), parameters=OVERVIEW)
    def get(self, request):
        overview = is_overview(request)
        accounts = self.policy.accounts().order_by("id")
        if overview:
            accounts = overview_queryset(
                self.policy, accounts, query_flag(request, "include_deleted")
            )
        ordered = own_account_first(list(accounts), self.policy)
        return Response([account_data(a, overview) for a in ordered])

    @api_doc(request=AccountCreateSerializer, responses={201: AccountSerializer})
    def post(self, request):
        data = self.validated(AccountCreateSerializer)
        try:
            account = actions.create_account(
                name=data["name"], owner=request.user, address=self.address
            )
        except actions.NameTaken:
            return Response({"name": ["is already taken"]}, status=400)
        return Response(AccountSerializer(account).data, status=status.HTTP_201_CREATED)


def get_account(policy: Policy, spec: str) -> Account:
    account = lookup(Account.objects.all(), spec)
    if account is None:
        raise exceptions.NotFound()
    policy.require_visible(account)
    return account


class AccountDetail(CorralView):
    @api_doc(responses=AccountOverviewSerializer, parameters=OVERVIEW)
    def get(self, request, account):
        found = get_account(self.policy, account)
        overview = is_overview(request)
        if overview:
            found = overview_queryset(
                self.policy,
                Account.objects.filter(pk=found.pk),
                query_flag(request, "include_deleted"),
            ).get()
        return Response(account_data(found, overview))

    @api_doc(request=AccountUpdateSerializer, responses=AccountSerializer)
    def put(self, request, account):
        found = get_account(self.policy, account)
        changes = self.validated(AccountUpdateSerializer)
        if "suspended" in changes:
            self.policy.require(found, CLUSTER_ADMIN)
        else:
            self.policy.require(found, Level.ACCOUNT_ADMIN)
        actions.update_account(found, changes, actor=request.user, address=self.address)
        return Response(AccountSerializer(found).data)

    @api_doc(responses={204: None})
    def delete(self, request, account):
        found = get_account(self.policy, account)
        # Deleting needs more than its creator held (account_admin).
        self.policy.require(found, CLUSTER_ADMIN)
        with transaction.atomic():
            if Group.objects.filter(
                account=found, virtual_machines__isnull=False
            ).exists():
                return Response(
                    {"account": ["still has virtual machines; purge them first"]},
                    status=400,
                )
            audit.record(
                AuditEvent.Kind.ACCOUNT_DELETED,
                actor=request.user,
                address=self.address,
                name=found.name,
            )
            found.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
