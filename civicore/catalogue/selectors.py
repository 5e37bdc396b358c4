"""Reads of the catalogue. Public data: no audit entry, but related rows are joined here once
so list pages and API lists cost a fixed number of queries."""

from __future__ import annotations

import time

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from civicore.catalogue.models import Procedure, Service, ServiceVersion
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


# Service versions never change once written (a new definition is a new version), so each
# process may keep the ones it has parsed: filing then skips re-reading and re-parsing the
# definition document on every request.
_VERSION_CACHE_SIZE = 512
_versions: dict[int, ServiceVersion] = {}


def service_version(pk: int) -> ServiceVersion:
    version = _versions.get(pk)
    if version is None:
        version = ServiceVersion.objects.get(pk=pk)
        if len(_versions) >= _VERSION_CACHE_SIZE:
            _versions.clear()
        _versions[pk] = version
    return version


# Filing looks up its service on every request. Each process keeps what it found for a short
# while: a newly loaded version or a service taken offline takes effect within this many seconds.
SERVICE_CACHE_SECONDS = 30.0
_services: dict[str, tuple[float, Service | None]] = {}


def online_service(code: str) -> Service | None:
    """The service with its current version and agency, if it is online; cached briefly."""
    now = time.monotonic()
    hit = _services.get(code)
    if hit is not None and now - hit[0] < SERVICE_CACHE_SECONDS:
        return hit[1]
    service = (
        Service.objects.select_related("agency").filter(code=code).first() if _plausible_code(code) else None
    )
    if service is None or service.current_version_id is None or not service.online:
        service = None
    else:
        service.current_version = service_version(service.current_version_id)
    if len(_services) >= _VERSION_CACHE_SIZE:
        _services.clear()
    _services[code] = (now, service)
    return service


def forget_cached_services() -> None:
    _services.clear()
    _versions.clear()
