from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from joserfc import jwe, jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from civicore.audit.models import AuditEntry
from civicore.consent import services
from civicore.consent.models import AccessToken, AuthorizationCode, Consent
from civicore.core.errors import NotFound, PermissionDenied, ValidationFailed
from civicore.core.jose import reset_cache, verification_keys
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def person() -> Person:
    return make_citizen()


@pytest.fixture
def app() -> AgencyApplication:
    return make_application()[0]


def _code(person: Person, app: AgencyApplication, **kwargs: Any) -> tuple[AuthorizationCode, str]:
    code = secrets.token_urlsafe(32)
    row = services.authorization_approve(
        person=person,
        application=app,
        items=kwargs.pop("items", ["full_name", "address"]),
        purpose="benefit",
        days=kwargs.pop("days", 90),
        code=code,
        redirect_uri="https://agency.example/callback",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    return row, code


def _token(person: Person, app: AgencyApplication, **kwargs: Any) -> tuple[AccessToken, str]:
    row, _code_value = _code(person, app, **kwargs)
    value = secrets.token_urlsafe(32)
    access = services.access_token_issue(code=row, token=value, lifetime_seconds=600)
    assert access is not None
    return access, value


def test_consent_grant_files_the_consent_and_audits_it(person: Person, app: AgencyApplication) -> None:
    consent = services.consent_grant(
        person=person, application=app, items=["full_name"], purpose="benefit", days=30
    )
    assert consent.is_active()
    assert consent.purpose_name == "Benefit eligibility"
    assert consent.purpose_name_vi == "Xét trợ cấp"
    assert timedelta(days=29) < consent.expires_at - consent.granted_at <= timedelta(days=30)
    entry = AuditEntry.objects.get(action="consent.grant")
    assert entry.person == person
    assert entry.details["consent"] == str(consent.public_id)


@pytest.mark.parametrize(
    ("items", "purpose", "days", "error", "code"),
    [
        (["national_id"], "benefit", 30, PermissionDenied, "invalid_scope"),
        ([], "benefit", 30, ValidationFailed, "invalid_scope"),
        (["full_name"], "tax", 30, PermissionDenied, "invalid_purpose"),
        (["full_name"], "benefit", 91, ValidationFailed, "validation_failed"),
        (["full_name"], "benefit", 0, ValidationFailed, "validation_failed"),
    ],
)
def test_consent_grant_refuses_what_the_application_may_not_have(
    person: Person, app: AgencyApplication, items: list[str], purpose: str, days: int, error: type, code: str
) -> None:
    with pytest.raises(error) as exc:
        services.consent_grant(person=person, application=app, items=items, purpose=purpose, days=days)
    assert exc.value.code == code
    assert not Consent.objects.exists()


def test_a_new_consent_for_the_same_purpose_replaces_the_old_one(
    person: Person, app: AgencyApplication
) -> None:
    old_token, _value = _token(person, app)
    new = services.consent_grant(
        person=person, application=app, items=["address"], purpose="benefit", days=10
    )
    old = Consent.objects.get(pk=old_token.consent_id)
    assert old.status == Consent.Ending.REPLACED
    assert new.is_active()
    old_token.refresh_from_db()
    assert old_token.revoked_at is not None


def test_revoke_is_immediate_audited_and_only_for_the_owner(person: Person, app: AgencyApplication) -> None:
    access, value = _token(person, app)
    with pytest.raises(NotFound):
        services.consent_revoke(person=make_citizen(), consent_id=access.consent.public_id)
    with pytest.raises(NotFound):
        services.consent_revoke(person=person, consent_id="not-a-uuid")

    consent = services.consent_revoke(person=person, consent_id=access.consent.public_id)
    assert consent.status == Consent.Ending.REVOKED
    access.refresh_from_db()
    assert access.revoked_at is not None
    assert AuditEntry.objects.filter(action="consent.revoke", person=person).count() == 1
    with pytest.raises(services.InvalidToken):
        services.person_data_release(token=value, endpoint="/api/v1/consent/person")
    # Withdrawing twice changes nothing and records nothing more.
    services.consent_revoke(person=person, consent_id=access.consent.public_id)
    assert AuditEntry.objects.filter(action="consent.revoke", person=person).count() == 1


def test_a_code_is_spent_once_and_a_second_spend_withdraws_its_tokens(
    person: Person, app: AgencyApplication
) -> None:
    row, _code_value = _code(person, app)
    first = services.access_token_issue(code=row, token="t" * 43, lifetime_seconds=600)
    assert first is not None
    assert services.access_token_issue(code=row, token="u" * 43, lifetime_seconds=600) is None
    first.refresh_from_db()
    assert first.revoked_at is not None
    assert AccessToken.objects.count() == 1
    assert AuditEntry.objects.filter(action="consent.code.reused").count() == 1


def test_tokens_are_stored_only_as_hashes_and_live_at_most_ten_minutes(
    person: Person, app: AgencyApplication
) -> None:
    row, _code_value = _code(person, app)
    access = services.access_token_issue(code=row, token="secret-token-value", lifetime_seconds=86400)
    assert access is not None
    assert access.token_hash == services.sha256_hex("secret-token-value")
    assert "secret-token-value" not in json.dumps(list(AccessToken.objects.values()), default=str)
    assert access.expires_at - access.issued_at == timedelta(seconds=600)


def test_pairwise_subject_is_stable_per_application_and_differs_between_them(person: Person) -> None:
    one = services.pairwise_subject(person=person, client_id="app-a")
    assert one == services.pairwise_subject(person=person, client_id="app-a")
    assert one != services.pairwise_subject(person=person, client_id="app-b")
    assert one != services.pairwise_subject(person=make_citizen(), client_id="app-a")
    assert len(one) == 43  # an HMAC-SHA256, base64url: nothing of the person can be read from it


def test_release_is_signed_by_the_platform_and_logged(
    person: Person, app: AgencyApplication, settings: Any
) -> None:
    settings.SITE_URL = "https://civicore.example"
    access, value = _token(person, app, items=["full_name", "address", "date_of_birth"])

    release = services.person_data_release(token=value, endpoint="/api/v1/consent/person")
    assert release.content_type == "application/jwt"
    verified = jws.deserialize_compact(release.body, verification_keys())
    assert verified.protected["typ"] == "person+jwt"
    claims = json.loads(verified.payload)
    assert claims["iss"] == "https://civicore.example"
    assert claims["aud"] == app.client_id
    assert claims["sub"] == services.pairwise_subject(person=person, client_id=app.client_id)
    assert claims["consent_id"] == str(access.consent.public_id)
    assert claims["purpose"] == "benefit"
    assert claims["exp"] - claims["iat"] == services.PERSON_JWT_LIFETIME_SECONDS
    assert set(claims["items"]) == {"full_name", "address", "date_of_birth"}
    assert claims["items"]["date_of_birth"]["value"] == "1990-05-17"
    assert claims["items"]["full_name"]["source"] == {
        "kind": "agency",
        "agency": "population-register",
        "agency_name": {"vi": "Cơ sở dữ liệu quốc gia về dân cư", "en": "National Population Database"},
    }
    assert claims["items"]["full_name"]["verified_at"]

    message = MessageLogEntry.objects.get(operation="person.read")
    assert message.direction == "out"
    assert message.person == person
    assert message.consent_id == str(access.consent.public_id)
    assert message.response_body == release.body
    assert message.audit_entry is not None
    assert message.audit_entry.action == "exchange.person.read"
    assert message.audit_entry.details["items"] == ["full_name", "address", "date_of_birth"]


def test_items_missing_from_the_profile_are_left_out(person: Person, app: AgencyApplication) -> None:
    app.allowed_items = ["full_name", "phone"]
    app.save()
    _access, value = _token(person, app, items=["full_name", "phone"])
    release = services.person_data_release(token=value, endpoint="/x")
    claims = json.loads(jws.deserialize_compact(release.body, verification_keys()).payload)
    assert "phone" not in claims["items"]
    assert release.items == ["full_name"]


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (lambda: ECKey.generate_key("P-256", parameters={"use": "enc"}, auto_kid=True), "ECDH-ES"),
        (lambda: RSAKey.generate_key(2048, parameters={"use": "enc"}, auto_kid=True), "RSA-OAEP-256"),
        (lambda: OKPKey.generate_key("X25519", parameters={"use": "enc"}, auto_kid=True), "ECDH-ES"),
    ],
)
def test_release_is_encrypted_to_the_applications_encryption_key(person: Person, key: Any, alg: str) -> None:
    signing = ECKey.generate_key("P-256", auto_kid=True)
    encryption = key()
    app, _ = make_application(
        key=signing,
        jwks={"keys": [signing.as_dict(private=False), encryption.as_dict(private=False)]},
    )
    _access, value = _token(person, app)
    release = services.person_data_release(token=value, endpoint="/x")
    assert release.content_type == "application/jose"
    decrypted = jwe.decrypt_compact(release.body, encryption, algorithms=[alg, "A256GCM"])
    assert decrypted.protected["alg"] == alg
    assert decrypted.protected["cty"] == "JWT"
    assert decrypted.protected["kid"] == encryption.kid
    inner = jws.deserialize_compact(decrypted.plaintext, verification_keys())
    assert json.loads(inner.payload)["aud"] == app.client_id


def test_keys_that_are_not_for_encryption_are_never_used_to_encrypt(person: Person) -> None:
    signing = ECKey.generate_key("P-256", auto_kid=True)
    wrong_alg = ECKey.generate_key("P-256", parameters={"use": "enc", "alg": "A128KW"}, auto_kid=True)
    app, _ = make_application(
        key=signing, jwks={"keys": [signing.as_dict(private=False), wrong_alg.as_dict(private=False)]}
    )
    assert services.encryption_key_for(app) is None


@pytest.mark.parametrize(
    "state", ["expired_token", "revoked_token", "expired_consent", "inactive_app", "forged"]
)
def test_release_refuses_at_once(person: Person, app: AgencyApplication, state: str) -> None:
    access, value = _token(person, app)
    past = timezone.now() - timedelta(seconds=1)
    if state == "expired_token":
        AccessToken.objects.filter(pk=access.pk).update(expires_at=past)
    elif state == "revoked_token":
        AccessToken.objects.filter(pk=access.pk).update(revoked_at=past)
    elif state == "expired_consent":
        Consent.objects.filter(pk=access.consent_id).update(expires_at=past)
    elif state == "inactive_app":
        AgencyApplication.objects.filter(pk=app.pk).update(active=False)
    else:
        value = value[:-2] + "xx"
    with pytest.raises(services.InvalidToken):
        services.person_data_release(token=value, endpoint="/x")
    assert not MessageLogEntry.objects.exists()


def test_assertion_jti_is_accepted_once_per_application(app: AgencyApplication) -> None:
    later = timezone.now() + timedelta(minutes=2)
    assert services.client_assertion_use(application=app, jti="jti-12345", keep_until=later)
    assert not services.client_assertion_use(application=app, jti="jti-12345", keep_until=later)
    other = make_application()[0]
    assert services.client_assertion_use(application=other, jti="jti-12345", keep_until=later)
