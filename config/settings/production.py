"""Production: same as base, with HTTPS assumptions switched on."""

from config.env import env_bool
from config.settings.base import *  # noqa: F403
from config.settings.base import SITE_URL, TRUSTED_PROXY_COUNT

_HTTPS = SITE_URL.startswith("https")
# Browsers that have seen the site over HTTPS refuse plain HTTP to it, subdomains included, for a
# year. Preload lists are hard to leave: opt in with SECURE_HSTS_PRELOAD=true once every
# subdomain serves HTTPS.
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if _HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# X-Forwarded-Proto is believed only from proxies of ours (TRUSTED_PROXY_COUNT > 0), which must set
# it and drop the client's; without one, any client could claim HTTPS with it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_COUNT else None
SECURE_SSL_REDIRECT = _HTTPS
