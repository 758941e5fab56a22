"""A small CMS: pages are re-indexed in the background when they are saved."""

from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Page(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True)


class IndexEntry(models.Model):
    """What the background receiver saw when it ran."""

    page_pk = models.IntegerField()
    title = models.CharField(max_length=200)
    created = models.BooleanField()
    update_fields = models.JSONField(null=True)
    sender = models.CharField(max_length=100)
    signal_is_post_save = models.BooleanField(default=False)


class DeletionEntry(models.Model):
    page_pk = models.IntegerField()
    title = models.CharField(max_length=200)
    published_at = models.DateTimeField(null=True)
    still_in_database = models.BooleanField()
    origin = models.CharField(max_length=100)


class TagChange(models.Model):
    page_pk = models.IntegerField()
    action = models.CharField(max_length=20)
    tag_pks = models.JSONField()
    model = models.CharField(max_length=100)
