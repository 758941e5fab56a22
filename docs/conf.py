"""Sphinx configuration of the django-cronrunner documentation (MyST Markdown, Furo)."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS)]
# autodoc imports the app's modules, which need Django set up; these settings name an in-memory
# SQLite database that is never opened, so the build needs no database server.
os.environ["DJANGO_SETTINGS_MODULE"] = "docs_settings"
django.setup()

project = "django-cronrunner"
author = "django-cronrunner contributors"
copyright = "django-cronrunner contributors"
release = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["project"]["version"]

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "README.md", "docs_settings.py"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Links such as [budget-aware picking](../explanation/batch.md#budget-aware-picking).
myst_heading_anchors = 3

# Docstrings write `name` for code, as the source's comments do.
default_role = "literal"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

# Fences without a language are command lines, output and crontab lines: show them plain.
highlight_language = "none"

html_theme = "furo"
html_title = "django-cronrunner"
html_static_path = ["_static"]
