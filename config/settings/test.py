"""Test settings: fixed throwaway keys so the suite needs no environment; the database still
comes from DATABASE_URL, so the same suite runs on SQLite and PostgreSQL."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
# The sandbox gateway's terminal secret, so the VNPAY callback endpoint is live in tests.
os.environ.setdefault("VNPAY_HASH_SECRET", "test-only-vnpay-hash-secret-0123456789")
os.environ.setdefault("CIVICORE_VAR_DIR", tempfile.mkdtemp(prefix="civicore-test-"))
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
os.environ.setdefault("LOOKUP_HASH_KEY", "test-lookup-hash-key")

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE"}
# Tests start without platform signing keys (several test key creation and rotation themselves);
# keys are still created on first use, and one test migrates a new database to check the default.
SIGNING_KEYS_ON_MIGRATE = False
ACCOUNT_RATE_LIMITS = False  # type: ignore[no-redef,assignment]
# The embedded default, a database table: each test's throttle counters and used one-time codes
# roll back with its transaction, so failed logins in one test cannot lock out the next.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "civicore_cache"}}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - WhiteNoise warns about a missing directory
