"""Enqueue many calls of one task with one statement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import InvalidTask

if TYPE_CHECKING:
    from django_cronrunner.storage.results import AnyResult, AnyTask


def enqueue_many(
    task: AnyTask,
    args: Iterable[Sequence[Any]] | None = None,
    *,
    kwargs: Iterable[Mapping[str, Any]] | None = None,
) -> list[AnyResult]:
    """Enqueue one call of `task` per item of `args` (positional arguments) and/or `kwargs`
    (keyword arguments), paired in order; all or none are stored, in one round trip."""
    backend = task.get_backend()
    if not isinstance(backend, CronRunnerBackend):
        raise InvalidTask(
            f"{task.module_path} uses {type(backend).__name__}; enqueue_many() needs "
            "CronRunnerBackend."
        )
    return backend.enqueue_many(task, _calls(args, kwargs))


def _calls(
    args: Iterable[Sequence[Any]] | None, kwargs: Iterable[Mapping[str, Any]] | None
) -> list[tuple[Sequence[Any], Mapping[str, Any]]]:
    if args is None and kwargs is None:
        raise TypeError("enqueue_many() needs args, kwargs or both.")
    positional = None if args is None else list(args)
    keywords = None if kwargs is None else list(kwargs)
    for each in positional or []:
        # A string is a sequence too: "abc" would become three arguments.
        if not isinstance(each, list | tuple):
            raise TypeError(
                "enqueue_many() args must hold one list or tuple of positional arguments per "
                f"call, not {type(each).__name__}."
            )
    for keyword_set in keywords or []:
        if not isinstance(keyword_set, Mapping):
            raise TypeError(
                "enqueue_many() kwargs must hold one dict of keyword arguments per call, not "
                f"{type(keyword_set).__name__}."
            )
    if positional is None:
        assert keywords is not None
        return [((), each) for each in keywords]
    if keywords is None:
        return [(each, {}) for each in positional]
    if len(positional) != len(keywords):
        raise ValueError(
            f"enqueue_many() got {len(positional)} sets of positional and {len(keywords)} "
            "sets of keyword arguments; they are paired, so they must be as many."
        )
    return list(zip(positional, keywords, strict=True))
