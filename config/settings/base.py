"""Civicore settings. Environments differ only by environment variables (see .env.example).

With nothing set, Civicore runs embedded: SQLite under ./var, in-process fakes, console e-mail.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("CIVICORE_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "ninja",
    "civicore.core",
    "civicore.identity",
    "civicore.agencies",
    "civicore.audit",
    "civicore.catalogue",
    "civicore.applications",
    "civicore.cases",
    "civicore.credentials",
    "civicore.notify",
    "civicore.registry",
    "civicore.consent",
    "civicore.exchange",
    "civicore.organisations",
    "civicore.routing",
    "civicore.areas",
    "civicore.reports",
    "civicore.open311",
    "civicore.sensors",
    "civicore.payments",
    "civicore.transparency",
    "civicore.vc",
    "civicore.opendata",
    "civicore.insights",
    "civicore.feedback",
    "civicore.consultations",
    "civicore.portal",
]

MIDDLEWARE = [
    # First: every later step's log lines carry the request id, and every answer is counted.
    "civicore.core.middleware.RequestIdMiddleware",
    "civicore.core.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "civicore.identity.middleware.SessionActivityMiddleware",
    "civicore.identity.middleware.BackOfficeSecondFactorMiddleware",
    "civicore.core.middleware.SecurityHeadersMiddleware",
    # Last, so that its 429 page gets the headers above and forged posts never reach it.
    "civicore.core.middleware.LoginProtectionMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "civicore" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "civicore.portal.context_processors.navigation",
            ],
        },
    }
]

# Connections are kept between requests (CONN_MAX_AGE); before reusing one, each request checks
# it still works, so a database restart or a terminated session costs a reconnect, not an error.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'civicore.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes; IMMEDIATE
    # transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# PostgreSQL prepares the busiest statements (token check, filing) once per connection
# (civicore.core.rowsql); off behind a pooler that cannot keep them (PgBouncer < 1.21, transaction mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Argon2id for new and changed passwords; older PBKDF2 hashes still verify and are rehashed
# with Argon2 at the next successful login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "civicore.identity.passwords.BreachedPasswordValidator"},
    {"NAME": "civicore.identity.passwords.MaximumLengthValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:home"

# django-allauth: e-mail login; TOTP or a passkey as second factor; passkeys also log in alone.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
# Sign-up also asks for the national ID (the person starts at assurance level 1) and a phone.
ACCOUNT_FORMS = {"signup": "civicore.identity.forms.SignupForm"}
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
# allauth's rate limits are the first, short-window layer, per address. The per-account lockout is
# civicore.core.throttle's (docs/decisions/0014): it spares devices that signed in before, where
# allauth's per-account "5/5m/key" would let anyone keep an account's owner locked out.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "confirm_email": "1/3m/key",
}
# Proxies of ours in front of Civicore (0: none, REMOTE_ADDR is the client). With N, the client is
# the N-th address from the right of X-Forwarded-For, and X-Forwarded-Proto is believed.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = "Civicore"
MFA_PASSKEY_LOGIN_ENABLED = True
# allauth.usersessions lists each login's sessions; civicore.identity.middleware notes when they
# were last seen, at most every few minutes rather than on every request as allauth would.
USERSESSIONS_TRACK_ACTIVITY = False
USERSESSIONS_ADAPTER = "civicore.identity.adapters.UserSessionsAdapter"
# Sign-up attempts that check a national ID number, per client IP address and hour: whether a
# number is already registered must not be learnt by trying many.
SIGNUP_NATIONAL_ID_CHECKS_PER_HOUR = 10
# A refresh token presented again by the same client within this many seconds (a retry after a
# lost response, two requests racing) gets the pair the first use issued instead of setting off
# reuse detection, which withdraws every token of the grant. 0 turns the grace off.
OAUTH_REFRESH_GRACE_SECONDS = env_int("OAUTH_REFRESH_GRACE_SECONDS", 30)
# Officers and staff use these with a second factor only (civicore.identity.middleware).
BACK_OFFICE_PATH_PREFIXES = ["/office/", "/admin/", "/api/v1/cases", "/api/v1/payments"]

LANGUAGE_CODE = "vi"
LANGUAGES = [("vi", _("Vietnamese")), ("en", _("English"))]
# Our own catalogue first; locale_vendor holds our Vietnamese for django-allauth, which ships none.
LOCALE_PATHS = [BASE_DIR / "civicore" / "locale", BASE_DIR / "civicore" / "locale_vendor"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Ho_Chi_Minh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "civicore" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploaded documents and issued results live outside the web root and are served by views
# that check who is asking.
PRIVATE_STORAGE_DIR = Path(env_str("PRIVATE_STORAGE_DIR", str(VAR_DIR / "private"))).resolve()
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024

# Problem reports (civicore.reports): the service area as "south,west,north,east" in degrees
# (default: Vietnam), reports per client per hour, the photo pixel limit, and the map's tile layer.
REPORT_AREA = [float(part) for part in env_list("REPORT_AREA", ["8.0", "102.0", "23.5", "110.0"])]
REPORT_RATE_PER_HOUR = env_int("REPORT_RATE_PER_HOUR", 10)
# Ideas and comments together that one citizen may post to consultations in an hour.
CONSULTATION_POSTS_PER_HOUR = env_int("CONSULTATION_POSTS_PER_HOUR", 30)
# Each Open311 client (a 311 app filing for many people) has its own hourly limit.
OPEN311_RATE_PER_HOUR = env_int("OPEN311_RATE_PER_HOUR", 600)
PHOTO_MAX_PIXELS = env_int("PHOTO_MAX_PIXELS", 40_000_000)
MAP_TILE_URL = env_str("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env_str(
    "MAP_TILE_ATTRIBUTION", '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
)
# Address lookup for reports without a pin (civicore.reports.geocoding). The default looks nothing
# up, so no address leaves the machine; civicore.reports.geocoding.NominatimGeocoder asks the
# Nominatim at GEOCODER_URL (best an agency's own), limited to REPORT_AREA and these countries.
GEOCODER = env_str("GEOCODER", "civicore.reports.geocoding.NoGeocoder")
GEOCODER_URL = env_str("GEOCODER_URL", "https://nominatim.openstreetmap.org")
GEOCODER_COUNTRY_CODES = env_str("GEOCODER_COUNTRY_CODES", "vn")
# Open311 GeoReport v2 (civicore.open311): the jurisdiction_id this endpoint answers for.
OPEN311_JURISDICTION = env_str("OPEN311_JURISDICTION", "civicore")
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# City sensors (civicore.sensors). MQTT_URL names the broker ("mqtt://host:port"); empty means no
# broker: devices are provisioned in the in-process fake and post readings over HTTPS only.
# SENSOR_BROKER manages device credentials and ACLs: civicore.sensors.broker.DynsecBroker talks
# to Mosquitto's dynamic-security plugin as MQTT_ADMIN_USERNAME/MQTT_ADMIN_PASSWORD.
MQTT_URL = env_str("MQTT_URL", "")
MQTT_ADMIN_USERNAME = env_str("MQTT_ADMIN_USERNAME", "civicore-admin")
MQTT_ADMIN_PASSWORD = env_str("MQTT_ADMIN_PASSWORD", "")
# The platform's own connections (ingest, commands): a broker client with only the platform role.
# Without a password the platform connects as the admin, which also holds the platform role.
MQTT_PLATFORM_USERNAME = env_str("MQTT_PLATFORM_USERNAME", "civicore-platform")
MQTT_PLATFORM_PASSWORD = env_str("MQTT_PLATFORM_PASSWORD", "")
SENSOR_BROKER = env_str(
    "SENSOR_BROKER",
    "civicore.sensors.broker.DynsecBroker" if MQTT_URL else "civicore.sensors.broker.InMemoryBroker",
)
# The shared-subscription group the ingest processes join, and how they batch writes.
SENSOR_SHARE_GROUP = env_str("SENSOR_SHARE_GROUP", "civicore-ingest")
SENSOR_BATCH_MAX = env_int("SENSOR_BATCH_MAX", 5000)

# Transparency log: a signed tree head every few seconds while the log grows, hourly otherwise.
TRANSPARENCY_TREE_HEAD_SECONDS = env_int("TRANSPARENCY_TREE_HEAD_SECONDS", 5)
TRANSPARENCY_TREE_HEAD_MAX_AGE_SECONDS = env_int("TRANSPARENCY_TREE_HEAD_MAX_AGE_SECONDS", 3600)
SENSOR_BATCH_MS = env_int("SENSOR_BATCH_MS", 50)
SENSOR_MAX_PAYLOAD_BYTES = env_int("SENSOR_MAX_PAYLOAD_BYTES", 64 * 1024)

# Payments: how long a VietQR transfer and a gateway payment stay open before they expire (money
# that arrives later still counts, marked late).
PAYMENT_VIETQR_TTL_MINUTES = env_int("PAYMENT_VIETQR_TTL_MINUTES", 7 * 24 * 60)
PAYMENT_GATEWAY_TTL_MINUTES = env_int("PAYMENT_GATEWAY_TTL_MINUTES", 15)
# Gateway adapters by code; each reads its own settings below.
PAYMENT_GATEWAYS = {"vnpay": "civicore.payments.vnpay.from_settings"}
# VNPAY: the terminal and its hash secret from the merchant portal; the payment page and the
# querydr/refund API. The defaults point at `civicore paysandbox serve` (make demo starts it).
VNPAY_TMN_CODE = env_str("VNPAY_TMN_CODE", "CIVICORE")
VNPAY_HASH_SECRET = env_str("VNPAY_HASH_SECRET", "")
VNPAY_PAYMENT_URL = env_str("VNPAY_PAYMENT_URL", "http://127.0.0.1:8090/paymentv2/vpcpay.html")
VNPAY_API_URL = env_str("VNPAY_API_URL", "http://127.0.0.1:8090/merchant_webapi/api/transaction")
VNPAY_TIMEOUT_SECONDS = env_int("VNPAY_TIMEOUT_SECONDS", 10)

# Personal data at rest: AES-256-GCM keys, newest first, "id:base64key" comma separated.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
# Keyed hash for looking up encrypted identifiers.
LOOKUP_HASH_KEY = env_str("LOOKUP_HASH_KEY", "")
# `civicore backup`/`restore`: base64 32-byte keys, comma separated; the first seals new backups.
BACKUP_ENCRYPTION_KEY = env_list("BACKUP_ENCRYPTION_KEY", [])

# Document signing: PEM key and certificate chain created by `civicore setup signing`.
SIGNING_DIR = Path(env_str("SIGNING_DIR", str(VAR_DIR / "signing"))).resolve()
# `migrate` creates the platform's JWKS signing keys (one per algorithm) when there are none, so a
# new installation never publishes an empty key set.
SIGNING_KEYS_ON_MIGRATE = True

# Outside systems: "fake" runs in-process, anything else selects the real gateway.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Civicore <no-reply@civicore.invalid>")
MALWARE_SCANNER = env_str("MALWARE_SCANNER", "civicore.core.gateways.SignatureMalwareScanner")

# Background jobs: durable rows in the database, see civicore.core.jobs.
JOBS_MAX_ATTEMPTS = env_int("JOBS_MAX_ATTEMPTS", 8)
JOBS_RUN_INLINE = env_bool("JOBS_RUN_INLINE", False)

# Working-day calendar for SLA due dates.
SLA_CALENDAR = env_str("SLA_CALENDAR", "vn")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SITE_URL.startswith("https")
CSRF_COOKIE_SECURE = SITE_URL.startswith("https")
# Over HTTPS the __Host- prefix binds the cookies to this exact host, HTTPS and path /: a subdomain
# or a plain-HTTP page cannot set or overwrite them.
SESSION_COOKIE_NAME = "__Host-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if CSRF_COOKIE_SECURE else "csrftoken"
# Pages hand the token to forms and to htmx (hx-headers in base.html); no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 8
# Django's database sessions, loaded with one prepared statement (civicore.core.sessions).
SESSION_ENGINE = "civicore.core.sessions"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# LOG_FORMAT: "text" (the default) or "json", one object per line for a log collector
# (civicore.core.logs). Either way each line carries the request id of the request or job.
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be text or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "civicore.core.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "civicore.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# GET /metrics (Prometheus) answers only a scraper sending this as a bearer token; unset, the
# endpoint does not exist. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client): docs/operations.md.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# FileFields write under the private directory; nothing serves it directly.
MEDIA_ROOT = PRIVATE_STORAGE_DIR
MEDIA_URL = "/private/"

# Shared cache for sign-in throttling (civicore.core.throttle), allauth's rate limits and
# one-time-code replay protection; every web and worker process must see the same one.
# CACHE_URL: unset or db:// = a table in the database (`civicore migrate` creates it), shared by
# all processes of an embedded install; redis://host:6379/0 = Redis, for several machines;
# locmem:// = this process only (one process, development). REDIS_URL is read as an older name.
REDIS_URL = env_str("REDIS_URL", "")
CACHE_URL = env_str("CACHE_URL", "") or REDIS_URL
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES: dict[str, dict[str, object]] = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
elif CACHE_URL in ("", "db://", "locmem://"):
    # Throttle counters and known addresses must not be culled early: the default is 300 entries.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends."
            + ("locmem.LocMemCache" if CACHE_URL == "locmem://" else "db.DatabaseCache"),
            "LOCATION": "civicore_cache",
            "OPTIONS": {"MAX_ENTRIES": 100_000, "CULL_FREQUENCY": 10},
        }
    }
else:
    raise ImproperlyConfigured("CACHE_URL must be redis://..., db:// or locmem://")
ACCOUNT_USER_DISPLAY = "civicore.identity.selectors.display_name"
