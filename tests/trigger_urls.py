"""URLs of the trigger and metrics tests: django_cronrunner.urls as a site includes it, and a
page to visit."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("a page")


urlpatterns = [
    path("cron/", include("django_cronrunner.urls")),
    path("page/", page),
]
