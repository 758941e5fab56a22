"""A task module that raises while it is imported, as a module with a bug at import time does."""

from django_cronrunner.compat import task

raise RuntimeError("this module is broken at import time")


@task
def unreachable() -> None:  # pragma: no cover - never defined, the import fails first
    pass
