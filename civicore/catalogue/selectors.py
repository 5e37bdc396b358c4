"""Reads of the catalogue. Public data: no audit entry, but related rows are joined here once
so list pages and API lists cost a fixed number of queries."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from civicore.catalogue.models import Procedure, Service
from civicore.catalogue.search import query_words
from civicore.core.errors import NotFound


def service_list() -> QuerySet[Service]:
    """Services citizens can apply for: loaded and online."""
    return Service.objects.filter(online=True, current_version__isnull=False).select_related(
        "agency", "procedure", "current_version"
    )


def service_search(*, q: str | None) -> QuerySet[Service]:
    """Services whose names, summary or agency contain every word of `q`, accents ignored."""
    services = service_list()
    for word in query_words(q):
        services = services.filter(search_text__contains=word)
    return services.order_by("name_vi", "code")


def _plausible_code(code: str) -> bool:
    # PostgreSQL refuses NUL bytes in a query parameter; such a code cannot exist anyway.
    return "\x00" not in code and len(code) <= 100


def service_get(*, code: str) -> Service:
    service = service_list().filter(code=code).first() if _plausible_code(code) else None
    if service is None:
        raise NotFound(_("There is no e-service with this code."), code="not_found")
    return service


def procedure_search(*, q: str | None) -> QuerySet[Procedure]:
    procedures = Procedure.objects.select_related("agency")
    for word in query_words(q):
        procedures = procedures.filter(search_text__contains=word)
    return procedures.order_by("code")


def procedure_get(*, code: str) -> Procedure:
    procedures = Procedure.objects.select_related("agency")
    procedure = procedures.filter(code=code).first() if _plausible_code(code) else None
    if procedure is None:
        raise NotFound(_("There is no procedure with this code."), code="not_found")
    return procedure
