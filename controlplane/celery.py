"""The Celery application. Configuration lives in settings (``CELERY_*``)."""

import os

from celery import Celery

from controlplane.core.observability import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.sandbox")

app = Celery("controlplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Request id and organization travel in task headers; tasks are counted and timed.
connect_celery_signals()
