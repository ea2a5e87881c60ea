from django.http import HttpResponseRedirect
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from accounts import profile_views, session_views
from accounts import views as accounts
from groups import views as groups
from machines import admin_views as admin
from machines import disc_views as discs
from machines import network_views as network
from machines import views as machines
from machines import vm_views as vms
from panel import views as panel
from privileges import views as privileges
from privileges.portal import views as portal

A = "accounts/<str:account>"
G = f"{A}/groups/<str:group>"
VM = f"{G}/virtual_machines/<str:vm>"
VM_ID = "virtual_machines/<str:vm_id>"
DISC = "discs/<str:disc>"


def machine_paths(prefix: str) -> list:
    """Everything under one machine, reachable by name or by id."""
    return [
        path(prefix, vms.VirtualMachineDetail.as_view()),
        path(f"{prefix}/signal", vms.VirtualMachineSignal.as_view()),
        path(f"{prefix}/reimage", vms.VirtualMachineReimage.as_view()),
        path(f"{prefix}/privileges", vms.VirtualMachinePrivileges.as_view()),
        path(f"{prefix}/operations", vms.VirtualMachineOperations.as_view()),
        path(f"{prefix}/discs", discs.DiscList.as_view()),
        path(f"{prefix}/{DISC}", discs.DiscDetail.as_view()),
        path(f"{prefix}/{DISC}/backups", discs.BackupList.as_view()),
        path(f"{prefix}/{DISC}/backups/<str:backup>", discs.BackupDetail.as_view()),
        path(f"{prefix}/{DISC}/backup_schedules", discs.BackupScheduleList.as_view()),
        path(
            f"{prefix}/{DISC}/backup_schedules/<str:schedule>",
            discs.BackupScheduleDetail.as_view(),
        ),
        path(f"{prefix}/nics", network.NicList.as_view()),
        path(f"{prefix}/nics/<str:nic>", network.NicDetail.as_view()),
        path(f"{prefix}/nics/<str:nic>/ip_create", network.IpCreate.as_view()),
    ]


def disc_paths(prefix: str) -> list:
    return [
        path(prefix, discs.DiscDetail.as_view()),
        path(f"{prefix}/backups", discs.BackupList.as_view()),
        path(f"{prefix}/backups/<str:backup>", discs.BackupDetail.as_view()),
        path(f"{prefix}/backup_schedules", discs.BackupScheduleList.as_view()),
        path(
            f"{prefix}/backup_schedules/<str:schedule>",
            discs.BackupScheduleDetail.as_view(),
        ),
    ]


HOSTS = "<str:kind>/<str:spec>"

urlpatterns = [
    path("", lambda request: HttpResponseRedirect("/panel/")),
    # The browser panel.
    path("panel/", include("machines.dashboard.urls")),
    path("panel/login", panel.login_password),
    path("panel/login/code", panel.login_code),
    path("panel/logout", panel.logout_view),
    path("panel/profile/", include("accounts.profile_urls")),
    path(
        "panel/password-reset",
        profile_views.PasswordReset.as_view(),
        name="password-reset",
    ),
    path(
        "panel/password-reset/sent",
        profile_views.PasswordResetSent.as_view(),
        name="password-reset-sent",
    ),
    path(
        "panel/password-reset/<uidb64>/<token>",
        profile_views.PasswordResetConfirm.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "panel/password-reset/done",
        profile_views.PasswordResetDone.as_view(),
        name="password-reset-done",
    ),
    # Authentication (the BigV auth server's endpoints).
    path("session", session_views.create_session),
    path("session/<str:token>", session_views.session_detail),
    # Users, API keys and privileges.
    path("users", accounts.UserList.as_view()),
    path("users/<str:user>", accounts.UserDetail.as_view()),
    path("users/<str:user>/privileges", privileges.UserPrivileges.as_view()),
    path("api_keys", accounts.ApiKeyList.as_view()),
    path("api_keys/<str:key>", accounts.ApiKeyDetail.as_view()),
    path("privileges", privileges.PrivilegeList.as_view()),
    path("privileges/<str:privilege>", privileges.PrivilegeDetail.as_view()),
    # Accounts and groups.
    path("accounts", accounts.AccountList.as_view()),
    path(A, accounts.AccountDetail.as_view()),
    path(f"{A}/privileges", privileges.AccountPrivileges.as_view()),
    path(f"{A}/groups", groups.AccountGroupList.as_view()),
    path(G, groups.AccountGroupDetail.as_view()),
    path(f"{G}/privileges", privileges.GroupPrivileges.as_view()),
    path("groups", groups.GroupList.as_view()),
    path("groups/<str:group>", groups.GroupDetail.as_view()),
    # Machines, discs, NICs and addresses.
    path(f"{G}/vm_create", vms.VmCreate.as_view()),
    path(f"{G}/virtual_machines", vms.VirtualMachineList.as_view()),
    *machine_paths(VM),
    *machine_paths(VM_ID),
    *disc_paths("discs/<str:disc_id>"),
    path("ips/swap_virtual_machine_ips", network.SwapIps.as_view()),
    path("ips/<str:address>", network.IpDetail.as_view()),
    path("operations/<str:operation>", vms.OperationDetail.as_view()),
    # Cluster administration.
    path("admin/heads", admin.HeadList.as_view()),
    path("admin/heads/<str:spec>", admin.HeadDetail.as_view()),
    path("admin/tails", admin.TailList.as_view()),
    path("admin/tails/<str:spec>", admin.TailDetail.as_view()),
    path("admin/storage_pools", admin.StoragePoolList.as_view()),
    path("admin/storage_pools/<str:spec>", admin.StoragePoolDetail.as_view()),
    path(f"admin/{HOSTS}/virtual_machines", admin.HostedVirtualMachines.as_view()),
    path(f"admin/{HOSTS}/discs", admin.HostedDiscs.as_view()),
    path("admin/ip_ranges", admin.IpRangeList.as_view()),
    path("admin/ip_ranges/<str:spec>", admin.IpRangeDetail.as_view()),
    path("admin/vlans", admin.VlanList.as_view()),
    path("admin/vlans/<str:spec>", admin.VlanDetail.as_view()),
    path("admin/recent_vms", admin.RecentVirtualMachines.as_view()),
    path("admin/stopped_eligible_vms", admin.StoppedVirtualMachines.as_view()),
    # Definitions.
    path("definitions", machines.DefinitionList.as_view()),
    path("definitions/<str:definition>", machines.DefinitionDetail.as_view()),
    # The OpenAPI schema and its viewer.
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema")),
    # The team admin portal.
    path("panel/team/", include("privileges.portal.urls")),
    path("panel/step-up", portal.step_up_view, name="portal-step-up"),
]
