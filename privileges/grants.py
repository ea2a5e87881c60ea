"""Turning a grant request into privilege fields, for the API and the portal.

Both front doors validate with `GrantSerializer` (or a form built on the same
rules) and then call `resolve_grant`, so the rules for targets, API keys and
`password_required` live in one place.
"""

from __future__ import annotations

from accounts.models import Account, ApiKey, User
from groups.models import Group
from machines.models import VirtualMachine
from privileges.levels import CLUSTER_LEVELS, TARGET_FIELD, Level
from privileges.policy import Policy
from privileges.serializers import TARGET_FIELDS

TARGET_MODELS = {"account": Account, "group": Group, "virtual_machine": VirtualMachine}


def resolve_grant(
    policy: Policy, grantee: User | None, data: dict
) -> tuple[dict, dict]:
    """Turn validated grant data into model fields, or into {field: [message]}."""
    level = data["level"]
    wanted = TARGET_FIELD[Level(level)]
    given = [f for f in TARGET_FIELDS if data.get(f) is not None]
    fields = {
        "user": grantee,
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
        target = visible_target(policy, wanted, data[key])
        if target is None:
            return {}, {key: ["no such target"]}
        fields[wanted] = target
    if data.get("api_key_id") is not None:
        key = grantable_api_key(policy, grantee, data["api_key_id"])
        if key is None:
            return {}, {"api_key_id": ["no such API key of yours"]}
        fields["api_key"] = key
        # API keys never prove a password; their privileges cannot ask for one.
        fields["password_required"] = False
    return fields, {}


def grantable_api_key(policy: Policy, grantee: User | None, pk: int) -> ApiKey | None:
    """The grantee's key `pk`, when the caller may give it privileges: only
    its owner (and cluster admins) may. Anyone else gets None whether or not
    the key exists, so grants cannot probe who owns which key."""
    own = grantee is not None and grantee.pk == policy.user.pk
    if not (own or policy.is_cluster_admin()):
        return None
    return ApiKey.objects.filter(pk=pk, user=grantee).first()


def visible_target(policy: Policy, kind: str, pk: int):
    obj = TARGET_MODELS[kind].objects.filter(pk=pk).first()
    if obj is None or not policy.held_scope.sees(obj):
        return None
    return obj


def grant_target(fields: dict):
    """The account, group or machine of resolved grant fields (None: cluster)."""
    return fields.get("account") or fields.get("group") or fields.get("virtual_machine")


def require_grantable(policy: Policy, fields: dict) -> None:
    """The caller may grant this (below their level, or up to it for their own
    API key), and the target's account is not suspended."""
    target = grant_target(fields)
    if target is not None:
        # A target seen only through privileges whose condition fails: 403
        # naming the condition first, as for any other object.
        policy.require_visible(target)
    policy.require_manage_privilege(target, fields["level"], fields.get("api_key"))
    if target is not None:
        policy.require_not_suspended(target)
