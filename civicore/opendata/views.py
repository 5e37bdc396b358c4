"""The open data portal's pages (/data/, no login): the catalogue, each dataset with a preview of
its resources, CSV downloads and DCAT-AP metadata as JSON-LD."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from civicore.opendata import ckan, datastore, parquet, selectors

PREVIEW_ROWS = 10


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:200]
    found = list(selectors.datasets())
    words = q.casefold().split()
    if words:
        found = [d for d in found if all(w in selectors.search_text(d) for w in words)]
    return render(request, "opendata/index.html", {"datasets": found, "q": q})


def _dataset_or_404(name: str) -> Any:
    dataset = selectors.dataset_get(name)
    if dataset is None or dataset.name != name:
        raise Http404
    return dataset


@require_GET
def dataset_page(request: HttpRequest, name: str) -> HttpResponse:
    dataset = _dataset_or_404(name)
    resources = []
    for resource in dataset.resources.all():
        preview = datastore.search(
            datastore.Query(resource=resource, limit=PREVIEW_ROWS, include_total=False)
        )
        columns = [f for f in preview["fields"] if f["id"] != "_id"]
        english = (request.LANGUAGE_CODE or "vi").startswith("en")
        labels = {
            f["id"]: (f.get("label_en") if english else f.get("label_vi")) or f["id"] for f in resource.fields
        }
        resources.append(
            {
                "resource": resource,
                "columns": [
                    {"id": c["id"], "type": c["type"], "label": labels.get(c["id"], c["id"])} for c in columns
                ],
                "rows": [[record[c["id"]] for c in columns] for record in preview["records"]],
                "csv_url": selectors.download_url(resource),
                "parquet_url": selectors.download_url(resource, "parquet"),
            }
        )
    return render(
        request,
        "opendata/dataset.html",
        {
            "dataset": dataset,
            "organization": selectors.package_dict(dataset)["organization"],
            "resources": resources,
            "license": selectors.LICENSES.get(dataset.license_id, (dataset.license_id, "")),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(resource: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # a BOM, so spreadsheet programs read the Vietnamese as UTF-8
    yield writer.writerow([f["id"] for f in resource.fields])
    for row in datastore.rows(resource):
        yield writer.writerow(["" if v is None else v for v in row])


@require_GET
def download(request: HttpRequest, name: str, resource_id: str, fmt: str) -> HttpResponseBase:
    dataset = _dataset_or_404(name)
    resource = selectors.resource_get(resource_id)
    if resource is None or resource.dataset_id != dataset.id or fmt not in ("csv", "parquet"):
        raise Http404
    filename = f"{dataset.name}-{resource.key}.{fmt}"
    response: HttpResponseBase
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(resource), content_type="text/csv; charset=utf-8")
    else:
        response = FileResponse(parquet.write(resource), content_type=parquet.MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def catalog_jsonld(request: HttpRequest) -> HttpResponse:
    return _jsonld(selectors.dcat_catalog())


@require_GET
def dataset_jsonld(request: HttpRequest, name: str) -> HttpResponse:
    dataset = _dataset_or_404(name)
    return _jsonld({"@context": selectors.dcat_catalog()["@context"], **selectors.dcat_dataset(dataset)})


def _jsonld(document: dict[str, Any]) -> HttpResponse:
    return HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=1), content_type="application/ld+json; charset=utf-8"
    )


@require_GET
def api_root(request: HttpRequest) -> JsonResponse:
    """/api/3: the API's version, as CKAN answers it."""
    return JsonResponse({"version": 3})


action = ckan.action
