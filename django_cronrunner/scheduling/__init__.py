"""Recurring tasks: schedules declared in OPTIONS, their slots, and their system check."""

from django_cronrunner.scheduling.schedules import slot_of

__all__ = ["slot_of"]
