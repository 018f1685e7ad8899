"""Console sign-in (local accounts for the sandbox, or single sign-on) and the console itself."""

from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from controlplane.tenancy.console import console_index, login_view

urlpatterns = [
    path("login/", login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    re_path(r"^(?!api/|static/|admin/|oidc/|sso/|scim/).*$", console_index, name="console"),
]
