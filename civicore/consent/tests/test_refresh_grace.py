"""The refresh grace window: the same client repeating a refresh within
OAUTH_REFRESH_GRACE_SECONDS gets the pair the first use issued; a repeat after it, by another
client, or once that pair was used, is a replay and withdraws the whole family. Two requests
racing on PostgreSQL are decided one after the other under row locks."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from civicore.audit.models import AuditEntry
from civicore.consent.models import AccessToken, RefreshToken
from civicore.consent.services import sha256_hex
from civicore.consent.tests.helpers import (
    ASSERTION_TYPE,
    PASSWORD,
    TOTP,
    approve,
    client_assertion,
    exchange,
    pkce_pair,
    record_login,
)
from civicore.core.jose import reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

SCOPE = "openid profile offline_access"


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def citizen(db: Any) -> Person:
    return make_citizen()


@pytest.fixture
def agency(db: Any) -> tuple[AgencyApplication, ECKey]:
    return make_application()


def _browser(citizen: Person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    record_login(client, citizen.user, PASSWORD, TOTP)
    return client


def _tokens(citizen: Person, app: AgencyApplication, key: ECKey) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code = approve(_browser(citizen), app, challenge=challenge, scope=SCOPE, nonce=pkce_pair()[0][:20])
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _refresh(app: AgencyApplication, key: ECKey, refresh_token: str, **extra: Any) -> Any:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(app, key),
        **extra,
    }
    return Client().post("/oauth/token", data)


def _userinfo(token: str) -> int:
    return Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def _family_revoked() -> bool:
    return not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def _end_window() -> None:
    RefreshToken.objects.filter(successor_until__isnull=False).update(successor_until=timezone.now())


@pytest.mark.django_db
def test_a_retry_within_the_window_gets_the_same_pair(citizen: Person, agency: Any) -> None:
    app, key = agency
    first = _tokens(citizen, app, key)
    one = _refresh(app, key, first["refresh_token"])
    two = _refresh(app, key, first["refresh_token"])
    assert one.status_code == 200 and two.status_code == 200, two.content
    a, b = one.json(), two.json()
    assert (b["access_token"], b["refresh_token"]) == (a["access_token"], a["refresh_token"])
    assert b["scope"] == a["scope"] == SCOPE
    assert 0 < b["expires_in"] <= a["expires_in"]
    assert b["refresh_token"] != first["refresh_token"]
    assert two["Cache-Control"] == "no-store"
    # A fresh ID token for the same login, bound to the same access token.
    keys = KeySet.import_key_set(Client().get("/.well-known/jwks.json").json())
    claims_a = jwt.decode(a["id_token"], keys).claims
    claims_b = jwt.decode(b["id_token"], keys).claims
    assert claims_b["sub"] == claims_a["sub"] and claims_b["at_hash"] == claims_a["at_hash"]
    # Nothing was withdrawn, and the family goes on from the one pair.
    assert not _family_revoked()
    assert RefreshToken.objects.count() == 2 and AccessToken.objects.count() == 2
    assert _userinfo(b["access_token"]) == 200
    assert AuditEntry.objects.filter(action="consent.token.refresh.retried").count() == 1
    assert not AuditEntry.objects.filter(action="consent.refresh.reused").exists()
    nxt = _refresh(app, key, b["refresh_token"])
    assert nxt.status_code == 200
    assert _userinfo(nxt.json()["access_token"]) == 200


@pytest.mark.django_db
def test_the_pair_is_kept_encrypted_and_only_for_the_window(citizen: Person, agency: Any) -> None:
    app, key = agency
    first = _tokens(citizen, app, key)
    pair = _refresh(app, key, first["refresh_token"]).json()
    spent = RefreshToken.objects.get(token_hash=sha256_hex(first["refresh_token"]))
    assert spent.successor_until is not None
    assert spent.successor_until - spent.used_at == timedelta(seconds=30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT successor FROM consent_refreshtoken WHERE id = %s", [spent.pk])
        raw = cursor.fetchone()[0]
    assert raw and pair["refresh_token"] not in raw and pair["access_token"] not in raw
    # Once the family moves on, the earlier pair is forgotten.
    _refresh(app, key, pair["refresh_token"])
    spent.refresh_from_db()
    assert spent.successor == "" and spent.successor_until is None
    # And once its window has passed, a later refresh anywhere wipes it.
    other_app, other_key = make_application()
    other = _tokens(citizen, other_app, other_key)
    _end_window()
    _refresh(other_app, other_key, other["refresh_token"])
    assert not RefreshToken.objects.filter(successor_until__lte=timezone.now()).exists()


@pytest.mark.django_db
def test_a_repeat_after_the_window_withdraws_the_family(citizen: Person, agency: Any) -> None:
    app, key = agency
    first = _tokens(citizen, app, key)
    pair = _refresh(app, key, first["refresh_token"]).json()
    _end_window()
    replay = _refresh(app, key, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert _family_revoked()
    assert _userinfo(pair["access_token"]) == 401
    assert AuditEntry.objects.filter(action="consent.refresh.reused").count() == 1


@pytest.mark.django_db
def test_a_repeat_once_the_pair_was_used_withdraws_the_family(citizen: Person, agency: Any) -> None:
    app, key = agency
    first = _tokens(citizen, app, key)
    pair = _refresh(app, key, first["refresh_token"]).json()
    third = _refresh(app, key, pair["refresh_token"])
    assert third.status_code == 200
    replay = _refresh(app, key, first["refresh_token"])  # still within 30 s of its use
    assert replay.json()["error"] == "invalid_grant"
    assert _family_revoked()
    assert _userinfo(third.json()["access_token"]) == 401


@pytest.mark.django_db
def test_a_spent_token_from_another_client_withdraws_the_family(citizen: Person, agency: Any) -> None:
    app, key = agency
    other, other_key = make_application()
    first = _tokens(citizen, app, key)
    pair = _refresh(app, key, first["refresh_token"]).json()
    stolen = _refresh(other, other_key, first["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert _family_revoked()
    assert _userinfo(pair["access_token"]) == 401


@pytest.mark.django_db
def test_with_no_grace_a_repeat_is_always_a_replay(citizen: Person, agency: Any, settings: Any) -> None:
    settings.OAUTH_REFRESH_GRACE_SECONDS = 0
    app, key = agency
    first = _tokens(citizen, app, key)
    assert _refresh(app, key, first["refresh_token"]).status_code == 200
    assert RefreshToken.objects.filter(successor_until__isnull=False).count() == 0
    assert _refresh(app, key, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert _family_revoked()


@pytest.mark.django_db
def test_no_retry_once_the_consent_is_withdrawn(citizen: Person, agency: Any) -> None:
    app, key = agency
    first = _tokens(citizen, app, key)
    assert _refresh(app, key, first["refresh_token"]).status_code == 200
    from civicore.consent.models import Consent
    from civicore.consent.services import consent_revoke

    consent_revoke(person=citizen, consent_id=Consent.objects.get().public_id)
    retry = _refresh(app, key, first["refresh_token"])
    assert retry.status_code == 400 and retry.json()["error"] == "invalid_grant"


# --- Real concurrency ---------------------------------------------------------------------------


def _race(app: AgencyApplication, key: ECKey, refresh_token: str, n: int) -> list[Any]:
    """`n` threads, each with its own database connection, send the same refresh at once."""
    barrier = threading.Barrier(n)
    assertions = [client_assertion(app, key) for _ in range(n)]
    results: list[Any] = [None] * n

    def send(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            data = {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertions[i],
            }
            response = Client().post("/oauth/token", data)
            results[i] = (response.status_code, response.json())
        except Exception as exc:  # reported by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_racing_refreshes_on_postgresql_get_one_pair_and_keep_the_family(
    citizen: Person, agency: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite runs one writer at a time")
    app, key = agency
    for _round in range(3):
        first = _tokens(citizen, app, key)
        results = _race(app, key, first["refresh_token"], 4)
        assert all(isinstance(r, tuple) for r in results), results
        assert [status for status, _body in results] == [200] * 4, results
        pairs = {(body["access_token"], body["refresh_token"]) for _status, body in results}
        assert len(pairs) == 1, pairs
        access_token, refresh_token = pairs.pop()
        # One successor per family: the racing requests did not fork it.
        spent = RefreshToken.objects.get(token_hash=sha256_hex(first["refresh_token"]))
        assert RefreshToken.objects.filter(code_id=spent.code_id).count() == 2
        assert not RefreshToken.objects.filter(code_id=spent.code_id, revoked_at__isnull=False).exists()
        retried = AuditEntry.objects.filter(
            action="consent.token.refresh.retried", details__client_id=app.client_id
        )
        assert retried.count() == 3 * (_round + 1)
        assert _userinfo(access_token) == 200
        assert _refresh(app, key, refresh_token).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_racing_refreshes_after_the_window_withdraw_the_family_once(citizen: Person, agency: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite runs one writer at a time")
    app, key = agency
    first = _tokens(citizen, app, key)
    assert _refresh(app, key, first["refresh_token"]).status_code == 200
    _end_window()
    results = _race(app, key, first["refresh_token"], 3)
    assert all(isinstance(r, tuple) for r in results), results
    assert {(status, body["error"]) for status, body in results} == {(400, "invalid_grant")}
    assert _family_revoked()
