from django.urls import path

from controlplane.sso.api.login import sso_callback, sso_start

urlpatterns = [
    path("start", sso_start, name="sso-start"),
    path("callback/", sso_callback, name="sso-callback"),
]
