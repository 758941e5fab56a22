from django.apps import AppConfig


class PeerProjectConfig(AppConfig):
    name = "benchmarks.peer_project"
    label = "peer_project"
