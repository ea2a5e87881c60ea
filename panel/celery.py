"""The Celery app. With no CELERY_BROKER_URL, an embedded broker on the
filesystem (kombu's filesystem transport) under var/broker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")

app = Celery("panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
