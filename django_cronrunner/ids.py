"""Task ids that sort by creation time (UUID version 7, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid


def new_task_id(unix_ms: int | None = None) -> uuid.UUID:
    """Return a version 7 UUID: 48 bits of Unix milliseconds, then 74 random bits.

    Rows enqueued together get neighbouring primary keys, so inserting and updating them
    touches a few index pages instead of pages all over a large table: with a million
    retained rows, random (version 4) keys cost InnoDB, whose table is its primary key index,
    more than half of its drain rate.
    """
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError(f"A version 7 UUID holds 48 bits of milliseconds, not {unix_ms}.")
    random_bits = int.from_bytes(os.urandom(10)) & ((1 << 74) - 1)
    rand_a, rand_b = random_bits >> 62, random_bits & ((1 << 62) - 1)
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)
