"""Platform signing keys: present from installation, rotated so that no relying party meets a
signature whose key it has not been able to fetch yet."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from joserfc import jws

from civicore.core import jose
from civicore.core.models import SigningKey

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _no_cached_keys() -> Any:
    jose.reset_cache()
    yield
    jose.reset_cache()


class Clock:
    """Moves `timezone.now()` as jose sees it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = timezone.now()
        monkeypatch.setattr(jose.timezone, "now", lambda: self.now)

    def advance(self, delta: timedelta) -> None:
        self.now += delta
        jose.reset_cache()  # the process cache is bounded separately (CACHE_SECONDS)


def published_kids() -> set[str]:
    return {key["kid"] for key in jose.public_jwks()["keys"]}


def test_ensure_signing_keys_creates_one_key_per_algorithm_once() -> None:
    created = jose.ensure_signing_keys()
    assert sorted(key.alg for key in created) == ["ES256", "EdDSA", "RS256"]
    assert jose.ensure_signing_keys() == []
    assert published_kids() == {key.kid for key in created}
    rsa = next(key for key in jose.public_jwks()["keys"] if key["alg"] == "RS256")
    assert rsa["kty"] == "RSA" and rsa["use"] == "sig" and "d" not in rsa


def test_rs256_signatures_verify_with_the_published_key_set() -> None:
    key = jose.signing_key("RS256")
    token = jws.serialize_compact({"alg": "RS256", "kid": key.kid}, b"payload", key)
    assert (
        jws.deserialize_compact(token, jose.verification_keys(), algorithms=["RS256"]).payload == b"payload"
    )


def test_a_rotated_key_is_published_before_it_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    old = jose.signing_key("ES256")
    new = jose.signing_key_rotate(alg="ES256")

    assert new.kid in published_kids()  # relying parties can fetch it now ...
    assert jose.signing_key("ES256").kid == old.kid  # ... while the old key keeps signing

    clock.advance(jose.PUBLISH_AHEAD - timedelta(seconds=1))
    assert jose.signing_key("ES256").kid == old.kid
    clock.advance(timedelta(seconds=2))
    assert jose.signing_key("ES256").kid == new.kid
    assert {old.kid, new.kid} <= published_kids()  # old signatures still verify

    clock.advance(jose.RETIRED_PUBLISHED + timedelta(seconds=1))
    assert old.kid not in published_kids() and new.kid in published_kids()


def test_the_publish_ahead_outlasts_every_cache_of_the_key_set() -> None:
    assert jose.PUBLISH_AHEAD.total_seconds() > jose.JWKS_MAX_AGE_SECONDS + jose.CACHE_SECONDS


def test_a_cached_signing_key_is_replaced_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    ticks = [1000.0]
    monkeypatch.setattr(jose.time, "monotonic", lambda: ticks[0])
    old = jose.signing_key("ES256")
    new = jose.signing_key_rotate(alg="ES256")
    clock.advance(jose.PUBLISH_AHEAD - timedelta(seconds=5))
    assert jose.signing_key("ES256").kid == old.kid  # cached now, but only until the rotation is due
    clock.now += timedelta(seconds=6)
    ticks[0] += 6
    assert jose.signing_key("ES256").kid == new.kid


def test_rotating_again_replaces_a_key_that_has_not_signed_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    Clock(monkeypatch)
    old = jose.signing_key("ES256")
    pending = jose.signing_key_rotate(alg="ES256")
    again = jose.signing_key_rotate(alg="ES256")
    assert not SigningKey.objects.filter(kid=pending.kid).exists()
    assert again.kid in published_kids() and jose.signing_key("ES256").kid == old.kid


def test_a_compromised_key_is_replaced_immediately(monkeypatch: pytest.MonkeyPatch) -> None:
    Clock(monkeypatch)
    old = jose.signing_key("EdDSA")
    new = jose.signing_key_rotate(alg="EdDSA", immediately=True)
    assert jose.signing_key("EdDSA").kid == new.kid
    assert SigningKey.objects.get(kid=old.kid).retired_at is not None


def test_a_new_installation_publishes_its_keys_when_migrated(tmp_path: Path) -> None:
    """`civicore migrate` on an empty database, as a new installation runs it: the JWKS has a key
    for every algorithm before any token is issued."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
        "CIVICORE_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "LOOKUP_HASH_KEY": "lookup-key-for-this-test",
    }
    civicore = [sys.executable, "-m", "civicore"]
    migrated = subprocess.run([*civicore, "migrate", "--no-input"], cwd=REPO, env=env, capture_output=True)
    assert migrated.returncode == 0, migrated.stderr.decode()
    assert b"Created platform signing keys" in migrated.stdout
    shown = subprocess.run(
        [
            *civicore,
            "shell",
            "-c",
            "import json; from civicore.core.jose import public_jwks as k; print(json.dumps(k()))",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=True,
    )
    keys = json.loads(shown.stdout.splitlines()[-1])["keys"]
    assert sorted(key["alg"] for key in keys) == ["ES256", "EdDSA", "RS256"]


def test_setup_keys_creates_what_is_missing_and_is_safe_to_run_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from django.core.management import call_command

    jose.signing_key("ES256")
    call_command("setup", "keys")
    first = capsys.readouterr().out
    assert "EdDSA" in first and "RS256" in first and "ES256 signing key" not in first
    call_command("setup", "keys")
    assert "Created" not in capsys.readouterr().out
    assert SigningKey.objects.count() == 3
