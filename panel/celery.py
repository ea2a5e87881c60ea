"""The Celery app. With no CELERY_BROKER_URL, an embedded broker on the
filesystem (kombu's filesystem transport) under var/broker.

Operations are routed to the queue of their machine's head (`head.<label>`).
In production each head has a worker of its own:

    celery -A panel worker -Q head.<label>

and one more (with beat, `-B`) consumes the default queue, `celery`, for the
periodic tasks. With CORRAL_WORKER_ALL_HEADS (the default on the embedded
broker) a worker also consumes the queue of every head registered when it
starts, so the single worker of `make run` does everything.
"""

import os

from celery import Celery
from celery.signals import celeryd_after_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")

app = Celery("panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_after_setup.connect
def _consume_every_head(sender, instance, **kwargs):
    from django.conf import settings

    if not settings.CORRAL_WORKER_ALL_HEADS:
        return
    from machines.models import Head

    for head in Head.objects.all():
        instance.app.amqp.queues.select_add(head.queue)
