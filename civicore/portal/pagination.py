"""Page links for server-rendered lists, to feed includes/pagination.html."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest


def _url_for(request: HttpRequest, number: int) -> str:
    query = request.GET.copy()
    query["page"] = str(number)
    return f"?{query.urlencode()}"


def paginate_page(request: HttpRequest, queryset: QuerySet[Any], per_page: int) -> dict[str, Any]:
    """One page of `queryset` for the `page` query parameter plus the links around it.

    A page number that is missing, not a number or out of range falls back to the first or last
    page rather than failing, because people edit URLs and follow stale links.
    """
    page: Page[Any] = Paginator(queryset, per_page).get_page(request.GET.get("page"))
    return {
        "page": page,
        "prev_url": _url_for(request, page.previous_page_number()) if page.has_previous() else "",
        "next_url": _url_for(request, page.next_page_number()) if page.has_next() else "",
    }
