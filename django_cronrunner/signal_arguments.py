"""Turn a signal's keyword arguments into JSON for a task, and back again when it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core import serializers
from django.core.exceptions import ObjectDoesNotExist
from django.db import models

from django_cronrunner.errors import ReceiverArgumentError

MODEL = "__model__"
MODEL_CLASS = "__model_class__"
DELETED = "__deleted__"
SET = "__set__"
FROZENSET = "__frozenset__"
MARKERS = {MODEL, MODEL_CLASS, DELETED, SET, FROZENSET}


def encode_arguments(receiver: str, arguments: Mapping[str, Any], deleted: bool) -> dict[str, Any]:
    """Return arguments as JSON; `deleted` says model instances no longer exist in the database."""
    return {
        name: _encode(receiver, name, value, deleted, depth=0) for name, value in arguments.items()
    }


def decode_arguments(receiver: str, encoded: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the arguments a receiver was sent, fetching model instances again."""
    return {name: _decode(receiver, name, value) for name, value in encoded.items()}


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def _encode(receiver: str, name: str, value: Any, deleted: bool, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        if deleted:
            # The row is gone by the time the task runs: carry its field values instead.
            return {DELETED: _label(type(value)), "data": serializers.serialize("json", [value])}
        if value.pk is None:
            raise ReceiverArgumentError(
                f"Background receiver {receiver} was sent argument {name!r}, an unsaved "
                f"{type(value).__name__} with no primary key, which cannot be fetched later."
            )
        return {
            MODEL: _label(type(value)),
            "pk": _encode(receiver, name, value.pk, False, 1),
            "db": value._state.db,
        }
    if isinstance(value, type) and issubclass(value, models.Model):
        return {MODEL_CLASS: _label(value)}
    if isinstance(value, models.QuerySet):
        # post_delete's `origin` is the queryset a bulk delete started from.
        return {MODEL_CLASS: _label(value.model)}
    if isinstance(value, set | frozenset) and depth == 0:
        members = [_encode(receiver, name, item, deleted, depth + 1) for item in value]
        return {FROZENSET if isinstance(value, frozenset) else SET: sorted(members, key=repr)}
    if isinstance(value, list | tuple):
        return [_encode(receiver, name, item, deleted, depth + 1) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        if MARKERS & set(value):
            raise ReceiverArgumentError(
                f"Background receiver {receiver} was sent argument {name!r}, a dict using a "
                f"reserved key ({sorted(MARKERS & set(value))})."
            )
        return {
            key: _encode(receiver, name, item, deleted, depth + 1) for key, item in value.items()
        }
    raise ReceiverArgumentError(
        f"Background receiver {receiver} was sent argument {name!r} of type "
        f"{type(value).__name__}: only model instances, model classes, sets of JSON values and "
        "JSON values can travel to a background task."
    )


def _decode(receiver: str, name: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(receiver, name, item) for item in value]
    if not isinstance(value, dict):
        return value
    if MODEL in value:
        model = _model(receiver, name, value[MODEL])
        try:
            return model._base_manager.db_manager(value.get("db")).get(pk=value["pk"])
        except ObjectDoesNotExist:
            raise ReceiverArgumentError(
                f"Background receiver {receiver} was not called: argument {name!r}, "
                f"{model.__name__} with pk {value['pk']!r}, no longer exists."
            ) from None
    if MODEL_CLASS in value:
        return _model(receiver, name, value[MODEL_CLASS])
    if DELETED in value:
        _model(receiver, name, value[DELETED])
        (snapshot,) = serializers.deserialize("json", value["data"])
        return snapshot.object
    if SET in value:
        return set(value[SET])
    if FROZENSET in value:
        return frozenset(value[FROZENSET])
    return {key: _decode(receiver, name, item) for key, item in value.items()}


def _model(receiver: str, name: str, label: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as e:
        raise ReceiverArgumentError(
            f"Background receiver {receiver} was not called: argument {name!r} refers to "
            f"the model {label!r}, which is not installed."
        ) from e
