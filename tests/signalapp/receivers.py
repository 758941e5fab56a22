"""Background receivers of the test CMS."""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal

from django_cronrunner.receivers import background_receiver
from tests.signalapp.models import DeletionEntry, IndexEntry, Page, TagChange

page_published = Signal()


@background_receiver(post_save, sender=Page)
def reindex_page(
    sender: type[Page],
    instance: Page,
    created: bool,
    update_fields: frozenset[str] | None,
    signal: Signal,
    **kwargs: Any,
) -> None:
    IndexEntry.objects.create(
        page_pk=instance.pk,
        title=instance.title,
        created=created,
        update_fields=None if update_fields is None else sorted(update_fields),
        sender=sender._meta.label,
        signal_is_post_save=signal is post_save and isinstance(update_fields, frozenset | None),
    )


@background_receiver(post_delete, sender=Page, queue_name="emails", priority=5)
def forget_page(sender: type[Page], instance: Page, origin: Any, **kwargs: Any) -> None:
    if isinstance(origin, Model):
        origin_text = f"instance {origin.pk}"
    elif isinstance(origin, type):
        origin_text = f"model {origin._meta.label}"
    else:
        origin_text = repr(origin)
    DeletionEntry.objects.create(
        page_pk=instance.pk,
        title=instance.title,
        published_at=instance.published_at,
        still_in_database=Page.objects.filter(pk=instance.pk).exists(),
        origin=origin_text,
    )


@background_receiver(m2m_changed, sender=Page.tags.through)
def tags_changed(
    sender: Any,
    instance: Page,
    action: str,
    model: type[Model],
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    TagChange.objects.create(
        page_pk=instance.pk,
        action=action,
        tag_pks=None if pk_set is None else sorted(pk_set),
        model=model._meta.label,
    )


@background_receiver(page_published)
async def announce(sender: Any, page: Page, channels: list[str], **kwargs: Any) -> None:
    await IndexEntry.objects.acreate(
        page_pk=page.pk,
        title=f"announced on {','.join(channels)}",
        created=False,
        sender="announce",
    )
