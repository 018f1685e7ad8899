from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "controlplane.sso"
    label = "sso"
    verbose_name = "Single sign-on"
