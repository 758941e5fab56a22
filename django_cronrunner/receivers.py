"""Signal receivers that run in the background: the signal enqueues a task that calls them later."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.core.signals import (
    got_request_exception,
    request_finished,
    request_started,
    setting_changed,
)
from django.db import DEFAULT_DB_ALIAS, models, router, transaction
from django.db.backends.signals import connection_created
from django.db.models import signals as model_signals
from django.dispatch import Signal
from django.utils.module_loading import import_string

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task, task_backends, task_enqueued, task_finished, task_started
from django_cronrunner.errors import ReceiverError
from django_cronrunner.signal_arguments import decode_arguments, encode_arguments

#: Signals whose sender waits for, or depends on, what the receiver does right now.
SYNCHRONOUS_SIGNALS: dict[Signal, str] = {
    request_started: "request_started",
    request_finished: "request_finished",
    got_request_exception: "got_request_exception",
    setting_changed: "setting_changed",
    connection_created: "connection_created",
    model_signals.pre_init: "pre_init",
    model_signals.post_init: "post_init",
    model_signals.pre_save: "pre_save",
    model_signals.pre_delete: "pre_delete",
    model_signals.pre_migrate: "pre_migrate",
    model_signals.post_migrate: "post_migrate",
    model_signals.class_prepared: "class_prepared",
    # A background receiver of these would enqueue a task per task, forever.
    task_enqueued: "task_enqueued",
    task_started: "task_started",
    task_finished: "task_finished",
}


@dataclass(frozen=True)
class BackgroundReceiver:
    """A receiver function registered to run in the background, and its signals."""

    path: str
    function: Callable[..., Any]
    signals: tuple[Signal, ...]


#: The allowlist: a stored task can only ever call a receiver registered here.
REGISTRY: dict[str, BackgroundReceiver] = {}


def background_receiver(
    signal: Signal | Sequence[Signal],
    *,
    sender: Any = None,
    dispatch_uid: str | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
    backend: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Connect the decorated function so that each signal enqueues a task that calls it."""
    signals = tuple(signal) if isinstance(signal, list | tuple) else (signal,)
    for each in signals:
        if each in SYNCHRONOUS_SIGNALS:
            raise ReceiverError(
                f"{SYNCHRONOUS_SIGNALS[each]} can only have ordinary receivers: its sender "
                "depends on what the receiver does before it goes on. Use @receiver instead."
            )
    overrides = {"queue_name": queue_name, "priority": priority, "backend": backend}

    def connect(function: Callable[..., Any]) -> Callable[..., Any]:
        path = receiver_path(function)
        registered = BackgroundReceiver(path, function, signals)
        REGISTRY[path] = registered
        for position, each in enumerate(signals):
            each.connect(
                _Enqueuer(registered, position, overrides),
                sender=sender,
                weak=False,
                dispatch_uid=f"{dispatch_uid or path}#{position}",
            )
        return function

    return connect


def receiver_path(function: Callable[..., Any]) -> str:
    """Return the dotted path a task will import the receiver by, refusing what can't be."""
    name = getattr(function, "__qualname__", None)
    if not inspect.isfunction(function) or name is None:
        raise ReceiverError(
            f"{function!r} is not a function; only functions run in the background."
        )
    if "<" in name or "." in name:
        raise ReceiverError(
            f"{function.__module__}.{name} must be a module-level function (not a lambda, a "
            "nested function or a method) so that a task can import it by name."
        )
    return f"{function.__module__}.{name}"


class _Enqueuer:
    """The receiver actually connected to the signal: checks the arguments and enqueues."""

    def __init__(
        self, registered: BackgroundReceiver, position: int, overrides: dict[str, Any]
    ) -> None:
        self.registered = registered
        self.position = position
        self.overrides = {key: value for key, value in overrides.items() if value is not None}

    def __call__(self, sender: Any, **arguments: Any) -> None:
        arguments.pop("signal", None)
        signal = self.registered.signals[self.position]
        deleted = signal is model_signals.post_delete
        # Encoding now, not at commit, so a bad argument fails the code that sent the signal.
        payload = {
            "receiver": self.registered.path,
            "signal": self.position,
            "sender": encode_arguments(self.registered.path, {"sender": sender}, False)["sender"],
            "arguments": encode_arguments(self.registered.path, arguments, deleted),
        }
        bound = run_background_receiver.using(**self.overrides)
        data_database = _database_of(arguments)
        task_database = _task_database(bound.backend)
        if task_database == data_database:
            # Same database: the task row is part of the sender's transaction, so it commits
            # or rolls back with the data, with no window in which one exists without the other.
            bound.enqueue(payload=payload)
        else:
            transaction.on_commit(lambda: bound.enqueue(payload=payload), using=data_database)


def _database_of(arguments: dict[str, Any]) -> str:
    using = arguments.get("using")
    if isinstance(using, str):
        return using
    instance = arguments.get("instance")
    if isinstance(instance, models.Model) and instance._state.db:
        return instance._state.db
    if isinstance(instance, models.Model):
        return router.db_for_write(type(instance))
    return DEFAULT_DB_ALIAS


def _task_database(alias: str) -> str | None:
    backend = task_backends[alias]
    return backend.config.database if isinstance(backend, CronRunnerBackend) else None


@task
def run_background_receiver(payload: dict[str, Any]) -> None:
    """Call a registered background receiver with the arguments its signal was sent."""
    path = str(payload.get("receiver", ""))
    registered = REGISTRY.get(path)
    if registered is None:
        # Importing the receiver's module runs its decorator, which registers it.
        with contextlib.suppress(ImportError):
            import_string(path)
        registered = REGISTRY.get(path)
    if registered is None:
        raise ReceiverError(
            f"{path!r} is not a registered background receiver; it was not called. "
            "Is its module still decorated with @background_receiver?"
        )
    position = payload.get("signal", 0)
    if not isinstance(position, int) or not 0 <= position < len(registered.signals):
        raise ReceiverError(f"{path} has no signal number {position!r}; it was not called.")
    sender = decode_arguments(path, {"sender": payload.get("sender")})["sender"]
    arguments = decode_arguments(path, payload.get("arguments", {}))
    call = registered.function
    if inspect.iscoroutinefunction(call):
        call = async_to_sync(call)
    call(sender=sender, signal=registered.signals[position], **arguments)
