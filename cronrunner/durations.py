"""How long each task path usually takes, so that a run starts only the tasks that fit."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence

#: Durations kept per task path: the most recent attempts, whatever run made them.
SAMPLES_KEPT = 20

#: A task path's typical duration is this percentile of its recent attempts.
PERCENTILE = 0.95


def percentile(samples: Sequence[float], fraction: float = PERCENTILE) -> float:
    """Return the nearest-rank percentile of `samples` (not empty)."""
    if not samples:
        raise ValueError("A percentile needs at least one sample.")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class DurationHistory:
    """The recent attempt durations of each task path: the stored ones, loaded on first use,
    plus this run's."""

    def __init__(self, load: Callable[[], Mapping[str, Sequence[float]]]) -> None:
        self._load = load
        self._stored: Mapping[str, Sequence[float]] | None = None
        # Only the latest samples matter: a long drain must not grow a list per task.
        self._new: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def typical(self, task_path: str) -> tuple[float, int] | None:
        """Return the typical duration of `task_path` and how many attempts it rests on."""
        samples = self._samples(task_path)
        if not samples:
            return None
        return percentile(samples), len(samples)

    def add(self, task_path: str, seconds: float) -> None:
        """Remember how long an attempt of `task_path` took in this run."""
        with self._lock:
            self._new.setdefault(task_path, deque(maxlen=SAMPLES_KEPT)).append(seconds)

    def changed(self) -> dict[str, list[float]]:
        """Return the samples to store for every task path this run ran."""
        with self._lock:
            paths = list(self._new)
        return {path: self._samples(path) for path in paths}

    def _samples(self, task_path: str) -> list[float]:
        with self._lock:
            new = list(self._new.get(task_path, ()))
            stored = self._stored
        if stored is None:
            # Outside our lock: a slow load must not hold up threads that only add.
            loaded = self._load()
            with self._lock:
                if self._stored is None:
                    self._stored = loaded
                stored = self._stored
        return [*stored.get(task_path, ()), *new][-SAMPLES_KEPT:]
