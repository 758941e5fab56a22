from django.apps import AppConfig


class SignalAppConfig(AppConfig):
    name = "tests.signalapp"
    label = "signalapp"

    def ready(self) -> None:
        from tests.signalapp import receivers  # noqa: F401 (connects the receivers)
