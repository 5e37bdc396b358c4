"""Public catalogue pages: search, e-service detail, procedure detail. No login needed."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from civicore.catalogue import presentation, selectors
from civicore.catalogue.models import Procedure, Service
from civicore.catalogue.search import MAX_QUERY_CHARS
from civicore.core.errors import NotFound

PAGE_SIZE = 20


class SearchResults:
    """E-services then procedures as one sequence the Paginator can slice, so a page costs two
    counts and at most two bounded queries however large the catalogue grows."""

    def __init__(self, services: Any, procedures: Any) -> None:
        self.services = services
        self.procedures = procedures
        self._service_count: int | None = None

    def service_count(self) -> int:
        if self._service_count is None:
            self._service_count = self.services.count()
        return self._service_count

    def count(self) -> int:
        return self.service_count() + self.procedures.count()

    def __getitem__(self, window: slice) -> list[tuple[str, Service | Procedure]]:
        start, stop = window.start or 0, window.stop
        split = self.service_count()
        rows: list[tuple[str, Service | Procedure]] = []
        if start < split:
            rows += [("service", s) for s in self.services[start : min(stop, split)]]
        if stop > split:
            rows += [("procedure", p) for p in self.procedures[max(start - split, 0) : stop - split]]
        return rows


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:MAX_QUERY_CHARS].strip()
    results = SearchResults(selectors.service_search(q=q), selectors.procedure_search(q=q))
    paginator: Paginator[tuple[str, Service | Procedure]] = Paginator(results, PAGE_SIZE)  # type: ignore[arg-type]
    page = paginator.get_page(request.GET.get("page"))
    context = {"q": q, "page": page, "total": page.paginator.count}
    if request.headers.get("HX-Request"):
        return render(request, "catalogue/_results.html", {**context, "oob": True})
    return render(request, "catalogue/search.html", context)


@require_GET
def service_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        service = selectors.service_get(code=code)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    version = service.current_version
    assert version is not None  # noqa: S101 - service_get only returns loaded services
    return render(
        request,
        "catalogue/service_detail.html",
        {
            "service": service,
            "version": version,
            "documents": presentation.documents(version),
            "prefilled": presentation.prefilled(version),
            "result_title": presentation.bilingual(version.definition["result"]["title"]),
        },
    )


@require_GET
def procedure_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        procedure = selectors.procedure_get(code=code)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    services = selectors.service_list().filter(procedure=procedure)
    return render(request, "catalogue/procedure_detail.html", {"procedure": procedure, "services": services})
