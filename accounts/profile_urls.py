from django.urls import path

from accounts import profile_views as views

app_name = "profile"

urlpatterns = [
    path("", views.profile, name="home"),
    path("ssh-keys", views.ssh_keys, name="ssh-keys"),
    path("password", views.change_password, name="password"),
    path("yubikey", views.enrol_remote_yubikey, name="yubikey-remote"),
    path("yubikey/local", views.enrol_local_yubikey, name="yubikey-local"),
    path("totp", views.enrol_totp, name="totp"),
    path("recovery-codes", views.recovery_codes, name="recovery-codes"),
    path(
        "devices/<str:kind>/<int:device>/remove",
        views.remove_device,
        name="remove-device",
    ),
    path(
        "sessions/browser/<str:session>/revoke",
        views.revoke_browser_session,
        name="revoke-browser-session",
    ),
    path(
        "sessions/api/<int:token>/revoke",
        views.revoke_api_session,
        name="revoke-api-session",
    ),
    path("api-keys/<int:key>/revoke", views.revoke_api_key, name="revoke-api-key"),
]
