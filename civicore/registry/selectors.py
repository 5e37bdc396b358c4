"""Reads of the agency registry."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from civicore.core.errors import NotFound, PermissionDenied
from civicore.registry.models import AgencyApplication, MessageLogEntry


def applications_for_agency(*, agency: Any) -> QuerySet[AgencyApplication]:
    return AgencyApplication.objects.filter(agency=agency).select_related("agency").order_by("client_id")


def application_for_officer(*, officer: Any, client_id: str) -> AgencyApplication:
    """404 when no such system exists, 403 when it is another agency's."""
    app = AgencyApplication.objects.select_related("agency").filter(client_id=client_id).first()
    if app is None:
        raise NotFound()
    if app.agency_id != officer.agency_id:
        raise PermissionDenied(code="other_agency")
    return app


def recent_messages(*, application: AgencyApplication, limit: int = 50) -> QuerySet[MessageLogEntry]:
    return MessageLogEntry.objects.filter(application=application).order_by("-id")[:limit]
