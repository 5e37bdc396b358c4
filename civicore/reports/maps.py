"""What a page with a map needs: the tile layer from settings and the headers that let it load.

The site-wide policy allows images from this site only and no geolocation; a map page widens
exactly that, for the tile server's origin and for "Use my location" on this site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse

from civicore.core.middleware import CONTENT_SECURITY_POLICY


def tile_origin() -> str:
    parts = urlsplit(settings.MAP_TILE_URL.replace("{s}", "a"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    host = parts.netloc
    if "{s}." in settings.MAP_TILE_URL:
        host = "*." + host.split(".", 1)[1]
    return f"{parts.scheme}://{host}"


def map_config() -> dict[str, object]:
    """The data attributes the map script reads (no inline script: CSP)."""
    south, west, north, east = settings.REPORT_AREA
    return {
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
        "bounds": f"{south},{west},{north},{east}",
        "center": f"{(south + north) / 2:.5f},{(west + east) / 2:.5f}",
    }


def allow_map(response: HttpResponse, *, geolocation: bool = False) -> HttpResponse:
    origin = tile_origin()
    policy = CONTENT_SECURITY_POLICY
    if origin:
        policy = policy.replace("img-src 'self' data:", f"img-src 'self' data: blob: {origin}")
    response.headers["Content-Security-Policy"] = policy
    if geolocation:
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(self)"
    return response
