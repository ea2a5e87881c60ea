from django.http import HttpResponseRedirect
from django.urls import path

from accounts import session_views
from accounts import views as accounts
from groups import views as groups
from machines import views as machines
from panel import views as panel
from privileges import views as privileges

A = "accounts/<str:account>"
G = f"{A}/groups/<str:group>"

urlpatterns = [
    path("", lambda request: HttpResponseRedirect("/panel/")),
    # The browser panel.
    path("panel/", panel.home),
    path("panel/login", panel.login_password),
    path("panel/login/code", panel.login_code),
    path("panel/logout", panel.logout_view),
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
    # Definitions.
    path("definitions", machines.DefinitionList.as_view()),
    path("definitions/<str:definition>", machines.DefinitionDetail.as_view()),
]
