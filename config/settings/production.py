"""Production: same as base, with HTTPS assumptions switched on."""

from config.settings.base import *  # noqa: F403
from config.settings.base import SITE_URL

SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = SITE_URL.startswith("https")
