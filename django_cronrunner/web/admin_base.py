"""What every admin page of ours shares: read-only rows, our stylesheet, and which admin styles
this Django has."""

from __future__ import annotations

from typing import Any

import django
from django.contrib import admin
from django.http import HttpRequest

#: Django 6.1's admin styles breadcrumbs as an <ol>; older ones as a <div>.
BREADCRUMBS_AS_LIST = django.VERSION >= (6, 1)
#: Django 5.2 and 6.0 draw a change form's object tools (History) inside its content block,
#: first; 6.1 draws them beside the title, outside it.
OBJECT_TOOLS_IN_CONTENT = django.VERSION < (6, 1)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows are written by runs only: no add form, no edit form."""

    class Media:
        css = {"all": ["django_cronrunner/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
