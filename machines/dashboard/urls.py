from django.urls import path

from machines.dashboard import cluster_views as cluster
from machines.dashboard import views

app_name = "dashboard"

G = "accounts/<str:account>/groups/<str:group>"
VM = f"{G}/machines/<str:vm>"
C = "cluster"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("machines/new", views.create_machine, name="create-machine"),
    path("accounts/<str:account>/groups/new", views.create_group, name="create-group"),
    path(f"{G}/", views.group_page, name="group"),
    path(f"{G}/rename", views.rename_group, name="rename-group"),
    path(f"{G}/delete", views.delete_group, name="delete-group"),
    path(f"{VM}/", views.machine, name="machine"),
    path(f"{VM}/live", views.machine_live, name="machine-live"),
    path(f"{VM}/do/<str:action>", views.machine_action, name="machine-action"),
    # The cluster admins' pages.
    path(f"{C}/", cluster.index, name="cluster"),
    path(f"{C}/heads/", cluster.heads, name="cluster-heads"),
    path(f"{C}/heads/<str:spec>/", cluster.head, name="cluster-head"),
    path(f"{C}/storage/", cluster.storage, name="cluster-storage"),
    path(f"{C}/storage/tails", cluster.add_tail, name="cluster-add-tail"),
    path(f"{C}/storage/pools", cluster.add_pool, name="cluster-add-pool"),
    path(f"{C}/storage/tails/<str:spec>/", cluster.tail, name="cluster-tail"),
    path(f"{C}/storage/pools/<str:spec>/", cluster.pool, name="cluster-pool"),
    path(f"{C}/networks/", cluster.networks, name="cluster-networks"),
    path(f"{C}/networks/ranges", cluster.add_range, name="cluster-add-range"),
    path(
        f"{C}/networks/vlans/<str:num>/delete",
        cluster.delete_vlan,
        name="cluster-delete-vlan",
    ),
    path(f"{C}/definitions/", cluster.definitions, name="cluster-definitions"),
    path(
        f"{C}/definitions/<str:definition>",
        cluster.replace,
        name="cluster-definition",
    ),
    path(f"{C}/accounts/", cluster.accounts, name="cluster-accounts"),
    path(
        f"{C}/accounts/<str:account>/<str:state>",
        cluster.suspend,
        name="cluster-suspend",
    ),
]
