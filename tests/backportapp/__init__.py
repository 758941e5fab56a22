"""A third-party-style app that declares its tasks with the django-tasks backport."""
