"""Background work of the transparency log: a new signed tree head every few seconds while the log
grows, and at least one an hour while it does not."""

from __future__ import annotations

from django.conf import settings

from civicore.core.jobs import periodic
from civicore.transparency import services

# Read once at start-up, when the worker registers its periodic tasks.
TREE_HEAD_SECONDS = float(getattr(settings, "TRANSPARENCY_TREE_HEAD_SECONDS", 5))


@periodic(seconds=TREE_HEAD_SECONDS)
def sign_tree_head() -> None:
    services.tree_head_sign_if_due()
