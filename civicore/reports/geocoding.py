"""Address lookup for reports filed without a pin, behind a Protocol chosen by the GEOCODER setting.

The default, NoGeocoder, finds nothing, so no address leaves the machine unless an operator points
GEOCODER at NominatimGeocoder (and GEOCODER_URL at their own Nominatim, or the public one). A lookup
that fails in any way (timeout, error status, bad answer) counts as "not found" and is logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.cache import cache as django_cache
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
MAX_ANSWER_BYTES = 1024 * 1024  # one result is a few kilobytes; anything far larger is not Nominatim
DISPLAY_NAME_MAX = 300
# Nominatim's usage policy asks clients to cache answers; places do not move.
CACHE_SECONDS = 7 * 24 * 3600
SETTINGS = ("GEOCODER", "GEOCODER_URL", "GEOCODER_COUNTRY_CODES", "REPORT_AREA", "SITE_URL")


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float
    display_name: str


class Geocoder(Protocol):
    def locate(self, address: str, *, language: str) -> Place | None:
        """Where the address is, or None when it cannot be found."""


class NoGeocoder:
    """Looks nothing up: a report needs a pin or a photo taken with location on."""

    def locate(self, address: str, *, language: str) -> Place | None:
        return None


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the same scheme, host and port; anything else is an error."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise urllib.error.HTTPError(
                newurl, code, f"redirect to another host refused: {msg}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("civicore")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
        release = "dev"
    return f"Civicore/{release} (+{settings.SITE_URL})"


class NominatimGeocoder:
    """The Nominatim /search API (format=jsonv2), limited to the service area and the country codes."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        country_codes: str | None = None,
        area: list[float] | None = None,
    ) -> None:
        base = (url or settings.GEOCODER_URL).strip().rstrip("/")
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(
                "GEOCODER_URL must be an http or https URL, such as https://nominatim.example"
            )
        self.search_url = base if parts.path.endswith("/search") else f"{base}/search"
        self.timeout = timeout
        self.country_codes = (
            settings.GEOCODER_COUNTRY_CODES if country_codes is None else country_codes
        ).replace(" ", "")
        south, west, north, east = (float(part) for part in (area or settings.REPORT_AREA))
        self.viewbox = f"{west},{north},{east},{south}"
        self.user_agent = _user_agent()
        self._opener = urllib.request.build_opener(_SameHostRedirects)

    def query(self, address: str, *, language: str) -> dict[str, str]:
        params = {
            "q": address,
            "format": "jsonv2",
            "limit": "1",
            "accept-language": language,
            "viewbox": self.viewbox,
            "bounded": "1",
        }
        if self.country_codes:
            params["countrycodes"] = self.country_codes
        return params

    def locate(self, address: str, *, language: str) -> Place | None:
        url = f"{self.search_url}?{urllib.parse.urlencode(self.query(address, language=language))}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) above
            url, headers={"User-Agent": self.user_agent, "Accept": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                if response.status != 200:
                    logger.warning("Geocoder answered HTTP %s", response.status)
                    return None
                body = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            logger.warning("Geocoder answered HTTP %s: %s", exc.code, exc.reason)
            return None
        except TimeoutError as exc:
            logger.warning("Geocoder did not answer within %.1f s: %s", self.timeout, exc)
            return None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            logger.warning("Geocoder could not be reached: %s", exc)
            return None
        if len(body) > MAX_ANSWER_BYTES:
            logger.warning("Geocoder answer is larger than %d bytes", MAX_ANSWER_BYTES)
            return None
        return self._place(body)

    @staticmethod
    def _place(body: bytes) -> Place | None:
        try:
            results = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            logger.warning("Geocoder answer is not JSON: %s", exc)
            return None
        if not isinstance(results, list):
            logger.warning("Geocoder answer is not a list of places")
            return None
        if not results:
            return None
        first = results[0]
        try:
            latitude, longitude = float(first["lat"]), float(first["lon"])
        except (TypeError, KeyError, ValueError) as exc:
            logger.warning("Geocoder answer has no usable lat/lon: %r", exc)
            return None
        if not (math.isfinite(latitude) and math.isfinite(longitude)):
            logger.warning("Geocoder answer has coordinates that are not numbers")
            return None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            logger.warning("Geocoder answer has coordinates off the globe")
            return None
        name = first.get("display_name")
        return Place(latitude, longitude, name[:DISPLAY_NAME_MAX] if isinstance(name, str) else "")


@cache
def geocoder() -> Geocoder:
    return import_string(settings.GEOCODER)()


def geocoder_configured() -> bool:
    """Whether addresses are looked up at all (the web form tells citizens so)."""
    return not isinstance(geocoder(), NoGeocoder)


def locate(address: str, *, language: str) -> Place | None:
    """The configured geocoder's answer, cached: the same address is not asked twice a week."""
    current = geocoder()
    if isinstance(current, NoGeocoder):
        return None
    normalized = " ".join(address.split()).casefold()
    digest = hashlib.sha256(f"{settings.GEOCODER}|{settings.GEOCODER_URL}|{language}|{normalized}".encode())
    key = f"reports.geocode:{digest.hexdigest()}"
    cached = django_cache.get(key)
    if isinstance(cached, list) and len(cached) == 3:
        return Place(float(cached[0]), float(cached[1]), str(cached[2]))
    place = current.locate(address, language=language)
    if place is not None:
        django_cache.set(key, [place.latitude, place.longitude, place.display_name], CACHE_SECONDS)
    return place


@receiver(setting_changed)
def _forget_geocoder(*, setting: str, **kwargs: Any) -> None:
    if setting in SETTINGS:
        geocoder.cache_clear()
