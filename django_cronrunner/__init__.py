"""A django.tasks backend that stores tasks in the database and runs them from cron."""
