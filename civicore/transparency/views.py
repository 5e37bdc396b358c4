"""The transparency log's public page: the latest signed tree head, what the log holds and never
holds, the latest heads and entries (paged), and how to witness the log. Anonymous and read-only."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from civicore.transparency import selectors, services

PER_PAGE = 20
# Deep pages of heads cost an OFFSET; nobody reads a thousand pages of them on a web page.
MAX_PAGE = 1000


def _page_number(request: HttpRequest, name: str) -> int:
    """A page number from the query string: missing, not a number or out of range gives page 1 or the
    last allowed page, as people edit URLs and follow stale links."""
    raw = str(request.GET.get(name, "1"))[:8]
    number = int(raw) if raw.isdigit() else 1
    return min(max(number, 1), MAX_PAGE)


def _url(request: HttpRequest, name: str, number: int) -> str:
    query = request.GET.copy()
    query[name] = str(number)
    return f"?{query.urlencode()}"


def _pager(request: HttpRequest, name: str, number: int, has_next: bool) -> dict[str, Any]:
    return {
        "number": number,
        "prev_url": _url(request, name, number - 1) if number > 1 else "",
        "next_url": _url(request, name, number + 1) if has_next and number < MAX_PAGE else "",
    }


@require_GET
def log_page(request: HttpRequest) -> HttpResponse:
    size, _root = selectors.state()
    heads_page = _page_number(request, "heads")
    offset = (heads_page - 1) * PER_PAGE
    heads = list(selectors.tree_heads()[offset : offset + PER_PAGE + 1])
    entries_page = min(_page_number(request, "entries"), max(1, -(-size // PER_PAGE)))
    entries = selectors.latest_entries(offset=(entries_page - 1) * PER_PAGE, limit=PER_PAGE)
    base = request.build_absolute_uri("/").rstrip("/")
    context = {
        "latest": heads[0] if heads_page == 1 and heads else selectors.tree_heads().first(),
        "log_id": services.log_id(),
        "log_size": size,
        "heads": heads[:PER_PAGE],
        "heads_pager": _pager(request, "heads", heads_page, len(heads) > PER_PAGE),
        "entries": entries,
        "entries_pager": _pager(request, "entries", entries_page, entries_page * PER_PAGE < size),
        "witness_command": f"civicore transparency witness {base}",
        "api": {
            "latest": "/api/v1/transparency/tree-heads/latest",
            "heads": "/api/v1/transparency/tree-heads",
            "entries": "/api/v1/transparency/entries?start=0&end=100",
            "consistency": "/api/v1/transparency/proofs/consistency?first=M&second=N",
            "inclusion": "/api/v1/transparency/proofs/inclusion?position=P&size=N",
            "jwks": "/.well-known/jwks.json",
            "docs": "/api/v1/docs",
        },
    }
    return render(request, "transparency/log.html", context)
