"""Cross-origin reads of public documents (CORS), for relying parties that fetch the discovery
document and the JWKS from a browser.

Only documents that are the same for everyone and read no cookie are shared with any origin
(`Access-Control-Allow-Origin: *`, no credentials); a preflight OPTIONS is answered for them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

PUBLIC_METHODS = ("GET", "HEAD", "OPTIONS")
PREFLIGHT_MAX_AGE_SECONDS = 86400
_HEADER_NAMES = re.compile(r"[A-Za-z0-9_-]+(\s*,\s*[A-Za-z0-9_-]+){0,19}")


def _allow_any_origin(response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"
    return response


def public_document(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET (and HEAD) for anyone from any origin; OPTIONS answers the CORS preflight. Other
    methods are 405, with the CORS header so a browser can tell the page why."""

    readable = require_http_methods(["GET", "HEAD"])(view)

    @functools.wraps(readable)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            response["Allow"] = ", ".join(PUBLIC_METHODS)
            response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            requested = request.headers.get("Access-Control-Request-Headers", "")
            if _HEADER_NAMES.fullmatch(requested):
                # Only simple headers are read; naming them back lets a fetch() that sends
                # Accept or a cache header through.
                response["Access-Control-Allow-Headers"] = requested
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
            return _allow_any_origin(response)
        return _allow_any_origin(readable(request, *args, **kwargs))

    return wrapper
