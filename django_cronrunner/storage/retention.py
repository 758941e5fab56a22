"""How long finished task results and batch log rows are kept: OPTIONS['retention']."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

#: Days kept by default, per kind of row.
RETENTION_KEYS = {"successful": 7, "failed": 30, "batches": 30}


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished rows are kept; None keeps them forever."""

    successful: timedelta | None = timedelta(days=RETENTION_KEYS["successful"])
    failed: timedelta | None = timedelta(days=RETENTION_KEYS["failed"])
    batches: timedelta | None = timedelta(days=RETENTION_KEYS["batches"])

    @classmethod
    def parse(cls, alias: str, raw: object) -> Retention:
        """Build a retention from OPTIONS['retention'], a dict of days (or None) by kind."""
        where = f"TASKS[{alias!r}]['OPTIONS']['retention']"
        if not isinstance(raw, Mapping):
            raise ImproperlyConfigured(f"{where} must be a dict such as {RETENTION_KEYS}.")
        unknown = set(raw) - set(RETENTION_KEYS)
        if unknown:
            raise ImproperlyConfigured(
                f"{where} has unknown keys {sorted(unknown)}; known keys are "
                f"{sorted(RETENTION_KEYS)}."
            )
        days: dict[str, timedelta | None] = {}
        for key, value in raw.items():
            if value is None:
                days[key] = None
            elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ImproperlyConfigured(
                    f"{where}[{key!r}] must be a positive number of days, or None to keep forever."
                )
            else:
                days[key] = timedelta(days=value)
        return cls(**days)
