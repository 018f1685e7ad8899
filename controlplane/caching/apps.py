from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "controlplane.caching"
    label = "caching"
    verbose_name = "Alluxio caches"
