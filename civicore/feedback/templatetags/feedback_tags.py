"""The rating panel on the citizen's own application, report and payment pages:
`{% rating_panel "application" application %}` (through feedback/_panel.html)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from civicore.core.errors import NotFound
from civicore.feedback import selectors, services
from civicore.feedback.models import Rating
from civicore.feedback.views import score_options

register = template.Library()


@register.inclusion_tag("feedback/_panel_body.html", takes_context=True)
def rating_panel(context: template.Context, kind: str, subject: Any) -> dict[str, Any]:
    """The form, or the rating given, for the signed-in owner of a finished transaction; nothing
    for anyone else or before it is finished."""
    request = context.get("request")
    public_id = getattr(subject, "public_id", None)
    if request is None or public_id is None:
        return {"show": False}
    try:
        found = selectors.subject_of(user=request.user, kind=kind, public_id=public_id)
    except NotFound:
        return {"show": False}
    if not found.finished:
        return {"show": False}
    rating = selectors.rating_of(kind=kind, public_id=found.public_id)
    return {
        "show": True,
        "rating": rating,
        "rating_label": Rating.Score(rating.score).label if rating else "",
        "action": reverse("feedback:rate", kwargs={"kind": kind, "public_id": found.public_id}),
        "options": score_options(),
        "comment_max": services.COMMENT_MAX,
        "csrf_token": context.get("csrf_token"),
    }
