"""CKAN's Action API (version 3), read-only, under /api/3/action/ and /api/action/: what the
`ckanapi` client, CKAN harvesters and open-data tools call.

Each action takes its parameters from the query string (GET) or a JSON object (POST) and answers
CKAN's envelope: {"help", "success": true, "result"} or {"success": false, "error": {"__type",
"message", ...}} with the status CKAN gives that error type. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from civicore.opendata import datastore, selectors

MAX_ROWS = 1000
MAX_BODY = 64 * 1024
# sort -> (key, descending)
SEARCH_SORTS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "metadata_modified desc": (lambda d: d.modified_at, True),
    "metadata_modified asc": (lambda d: d.modified_at, False),
    "name asc": (lambda d: d.name, False),
    "name desc": (lambda d: d.name, True),
    "title_string asc": (lambda d: d.title.casefold(), False),
    "title_string desc": (lambda d: d.title.casefold(), True),
    "score desc, metadata_modified desc": (lambda d: d.modified_at, True),
}
FQ_KEYS = ("organization", "tags", "name", "res_format")


class ActionError(Exception):
    status = 409
    kind = "Validation Error"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {"__type": self.kind, "message": self.message, **self.fields}


class NotFoundError(ActionError):
    status = 404
    kind = "Not Found Error"


class SearchQueryError(ActionError):
    status = 409
    kind = "Search Query Error"


class BadRequest(ActionError):
    status = 400
    kind = "Bad request"


def _validation(errors: dict[str, list[str]]) -> ActionError:
    return ActionError(
        "Validation error: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), **errors
    )


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes")


def _int(params: dict[str, Any], name: str, default: int, high: int) -> int:
    value = params.get(name, default)
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) > high:
        raise _validation({name: [f"must be a whole number from 0 to {high}"]})
    return int(text)


def _text(params: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _validation({name: ["Missing value"]})
        return ""
    if not isinstance(value, str) or len(value) > 500:
        raise _validation({name: ["must be text of at most 500 characters"]})
    return value


# The actions.


def package_list(params: dict[str, Any]) -> Any:
    limit = _int(params, "limit", MAX_ROWS, MAX_ROWS)
    offset = _int(params, "offset", 0, 10**9)
    names = list(selectors.datasets().values_list("name", flat=True))
    return names[offset : offset + limit]


def package_show(params: dict[str, Any]) -> Any:
    dataset = selectors.dataset_get(_text(params, "id", required=True))
    if dataset is None:
        raise NotFoundError("Not found: Dataset not found")
    return selectors.package_dict(dataset)


def _fq_filters(fq: str) -> list[tuple[str, str]]:
    filters = []
    for term in fq.split():
        key, sep, value = term.partition(":")
        value = value.strip('"')
        if not sep or key.lstrip("+") not in FQ_KEYS or not value:
            raise SearchQueryError(f"Search Query Error: only {', '.join(FQ_KEYS)} can filter (key:value)")
        filters.append((key.lstrip("+"), value))
    return filters


def package_search(params: dict[str, Any]) -> Any:
    q = _text(params, "q")
    fq = _text(params, "fq")
    rows = _int(params, "rows", 10, MAX_ROWS)
    start = _int(params, "start", 0, 10**9)
    sort = _text(params, "sort") or "score desc, metadata_modified desc"
    if sort not in SEARCH_SORTS:
        raise SearchQueryError(f"Search Query Error: cannot sort by {sort[:100]!r}")
    found = list(selectors.datasets())
    words = [] if q.strip() in ("", "*:*") else q.casefold().split()
    if words:
        found = [d for d in found if all(w in selectors.search_text(d) for w in words)]
    for key, value in _fq_filters(fq):
        if key == "organization":
            found = [d for d in found if selectors.publisher(d) == value]
        elif key == "tags":
            found = [d for d in found if value in d.tags]
        elif key == "name":
            found = [d for d in found if d.name == value]
        elif key == "res_format":
            found = [d for d in found if value.upper() == "CSV" and d.resources.all()]
    order, descending = SEARCH_SORTS[sort]
    found.sort(key=order, reverse=descending)
    return {
        "count": len(found),
        "sort": sort,
        "facets": {},
        "search_facets": {},
        "results": [selectors.package_dict(d) for d in found[start : start + rows]],
    }


def organization_list(params: dict[str, Any]) -> Any:
    all_fields = _flag(params.get("all_fields"), False)
    limit = _int(params, "limit", MAX_ROWS, MAX_ROWS)
    offset = _int(params, "offset", 0, 10**9)
    orgs = selectors.organizations()[offset : offset + limit]
    return orgs if all_fields else [o["name"] for o in orgs]


def organization_show(params: dict[str, Any]) -> Any:
    org = selectors.organization_get(_text(params, "id", required=True))
    if org is None:
        raise NotFoundError("Not found: Organization was not found.")
    if _flag(params.get("include_datasets"), False):
        owned = [d for d in selectors.datasets() if selectors.publisher(d) == org["name"]]
        org = {**org, "packages": [selectors.package_dict(d) for d in owned]}
    return org


def resource_show(params: dict[str, Any]) -> Any:
    resource = selectors.resource_get(_text(params, "id", required=True))
    if resource is None:
        raise NotFoundError("Not found: Resource was not found.")
    return selectors.resource_dict(resource)


def datastore_search(params: dict[str, Any]) -> Any:
    resource = selectors.resource_get(_text(params, "resource_id", required=True))
    if resource is None:
        raise NotFoundError(f'Not found: Resource "{str(params.get("resource_id"))[:100]}" was not found.')
    unknown = set(params) - {
        "resource_id", "id", "q", "filters", "limit", "offset", "sort", "fields", "include_total",
        "records_format", "distinct", "plain", "language",
    }  # fmt: skip
    if unknown:
        raise _validation({key[:100]: ["The input field is not expected"] for key in sorted(unknown)[:10]})
    if params.get("records_format", "objects") != "objects":
        raise _validation({"records_format": ["only 'objects' is offered"]})
    query = datastore.Query(
        resource=resource,
        q=params.get("q"),
        filters=params.get("filters"),
        limit=params.get("limit", datastore.DEFAULT_LIMIT),
        offset=params.get("offset", 0),
        sort=params.get("sort"),
        fields=params.get("fields"),
        include_total=params.get("include_total", True),
    )
    try:
        result = datastore.search(query)
    except datastore.DatastoreError as exc:
        raise _validation(exc.errors) from exc
    start = f"/api/3/action/datastore_search?resource_id={resource.id}"
    result["_links"] = {
        "start": start,
        "next": f"{start}&offset={result['offset'] + result['limit']}",
    }
    return result


def status_show(params: dict[str, Any]) -> Any:
    return {
        "site_title": "Civicore",
        "site_url": selectors.site_url(),
        "ckan_version": "2.10.0",
        "api_version": 3,
        "locale_default": "vi",
        "extensions": ["datastore"],
    }


ACTIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    f.__name__: f
    for f in (
        package_list,
        package_show,
        package_search,
        organization_list,
        organization_show,
        resource_show,
        datastore_search,
        status_show,
    )
}


def _params(request: HttpRequest) -> dict[str, Any]:
    form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if request.method == "POST" and (not length.isdigit() or int(length) > MAX_BODY):
        raise BadRequest("Bad request - the request body is too large")
    if request.method == "POST" and not form:
        if not request.body.strip():
            return {}
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            raise BadRequest("Bad request - JSON Error: the body is not JSON") from exc
        if not isinstance(body, dict):
            raise BadRequest("Bad request - JSON Error: the body must be a JSON object")
        return body
    params: dict[str, Any] = {}
    source = request.POST if request.method == "POST" else request.GET
    for key in source:
        values = source.getlist(key)
        params[key] = values[0] if len(values) == 1 else values
    for key in ("filters", "q"):  # CKAN takes these as JSON in a query string or a form
        value = params.get(key)
        if key == "filters" and isinstance(value, str) and value.strip():
            try:
                params[key] = json.loads(value)
            except (ValueError, RecursionError) as exc:
                raise _validation({"filters": ["must be a JSON object of field: value"]}) from exc
        if key == "q" and isinstance(value, str) and value.startswith("{"):
            try:
                params[key] = json.loads(value)
            except (ValueError, RecursionError):
                pass  # plain text that starts with a brace
    return params


@csrf_exempt  # read-only, no cookies read: nothing for a forged request to do
@require_http_methods(["GET", "POST"])
def action(request: HttpRequest, name: str) -> JsonResponse:
    help_url = f"{selectors.site_url()}/api/3/action/help_show?name={name[:60]}"
    try:
        handler = ACTIONS.get(name)
        if handler is None:
            raise BadRequest(f"Bad request - Action name not known: {name[:60]}")
        result = handler(_params(request))
    except ActionError as exc:
        return JsonResponse({"help": help_url, "success": False, "error": exc.body()}, status=exc.status)
    return JsonResponse(
        {"help": help_url, "success": True, "result": result}, json_dumps_params={"ensure_ascii": False}
    )
