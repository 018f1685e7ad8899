from django.apps import AppConfig


class CatalogsConfig(AppConfig):
    name = "controlplane.catalogs"
    label = "catalogs"
    verbose_name = "Catalogs and metastores"
