from django.urls import path

from privileges.portal import views

app_name = "portal"

A = "<str:account>"

urlpatterns = [
    path("", views.index, name="index"),
    path(f"{A}/", views.members, name="members"),
    path(f"{A}/grant", views.grant, name="grant"),
    path(
        f"{A}/privileges/<str:privilege>/conditions",
        views.conditions,
        name="conditions",
    ),
    path(f"{A}/privileges/<str:privilege>/revoke", views.revoke, name="revoke"),
    path(f"{A}/users/new", views.create_user, name="create-user"),
    path(f"{A}/api-keys", views.api_keys, name="api-keys"),
    path(f"{A}/api-keys/<str:key>/delete", views.api_key_delete, name="api-key-delete"),
    path(f"{A}/audit", views.audit_log, name="audit"),
]
