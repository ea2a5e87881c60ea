from django.urls import path

from machines.dashboard import views

app_name = "dashboard"

G = "accounts/<str:account>/groups/<str:group>"
VM = f"{G}/machines/<str:vm>"

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
]
