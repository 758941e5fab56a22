"""The URLconf a site includes for the HTTP trigger and the metrics view:
path("cron/", include("django_cronrunner.urls"))."""

from django.urls import path, re_path

from django_cronrunner.web.metrics import metrics
from django_cronrunner.web.trigger import trigger

app_name = "django_cronrunner"

urlpatterns = [
    path("trigger/", trigger, name="trigger"),
    # For schedulers that can only call a plain URL; off unless CRONRUNNER_TRIGGER_KEY_IN_PATH.
    # Every path below trigger/ comes to the view, with or without the slash: a near miss must
    # not fall to Django's 404 or slash redirect, which would log or echo the key.
    re_path(r"^trigger/(?P<key>.+?)/?$", trigger, name="trigger-key"),
    path("metrics", metrics, name="metrics"),
]
