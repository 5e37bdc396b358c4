"""Identity assurance: level 1 for a self-registered person, 2 once an officer or an agency of
record confirms the identity; services declare the level they need and, for high-risk ones, a
recent second factor, which the portal and the API enforce. The login's factors are described
as RFC 8176 method references (session_amr) and a level of assurance (session_acr)."""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from typing import Any

import pytest
from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.apps import apps as django_apps
from django.db import IntegrityError, transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from civicore.agencies.tests.factories import make_officer
from civicore.applications import services as application_services
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service
from civicore.audit.models import AuditEntry
from civicore.catalogue.definitions import load_file, validate_definition
from civicore.catalogue.services import SERVICES_DIR
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.identity.models import Person
from civicore.identity.selectors import (
    ACR_SELF_REGISTERED,
    ACR_VERIFIED,
    service_assurance,
    session_acr,
    session_amr,
)
from civicore.identity.services import (
    AssuranceLevelTooLow,
    FreshSecondFactorRequired,
    api_token_create,
    assurance_require,
    person_assurance_raise,
)
from civicore.identity.tests.factories import (
    log_in,
    make_citizen,
    make_self_registered_citizen,
    population_register,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


# --- levels --------------------------------------------------------------------------------------


def test_people_registered_by_an_agency_of_record_are_verified() -> None:
    person = make_citizen()
    assert person.assurance_level == Person.AssuranceLevel.VERIFIED
    assert person.assurance_verified_by == population_register()
    assert person.assurance_verified_at is not None


def test_self_registered_people_are_level_1() -> None:
    person = make_self_registered_citizen()
    assert person.assurance_level == Person.AssuranceLevel.SELF_REGISTERED
    assert person.assurance_verified_at is None


def test_a_verified_level_without_a_date_cannot_be_stored() -> None:
    person = make_self_registered_citizen()
    with pytest.raises(IntegrityError), transaction.atomic():
        Person.objects.filter(pk=person.pk).update(assurance_level=2)


def test_an_officer_verifies_a_person_in_person_and_it_is_audited() -> None:
    person = make_self_registered_citizen()
    officer = make_officer()
    raised = person_assurance_raise(person=person, level=2, officer=officer)
    assert raised.assurance_level == 2
    assert raised.assurance_verified_by == officer.agency
    assert timezone.now() - raised.assurance_verified_at < timezone.timedelta(minutes=1)
    entry = AuditEntry.objects.get(action="person.assurance_raise")
    assert entry.actor == officer.user and entry.agency == officer.agency and entry.person == raised
    assert entry.details == {"from": 1, "to": 2, "method": "in_person", "officer_id": officer.pk}


def test_an_agency_of_record_verifies_a_person() -> None:
    person = make_self_registered_citizen()
    agency = population_register()
    raised = person_assurance_raise(person=person, level=2, agency=agency)
    assert raised.assurance_verified_by == agency
    entry = AuditEntry.objects.get(action="person.assurance_raise")
    assert entry.actor is None and entry.actor_label == str(agency)
    assert entry.details["method"] == "agency_of_record"


def test_raising_to_the_current_level_changes_nothing() -> None:
    person = make_citizen()
    before = person.assurance_verified_at
    again = person_assurance_raise(person=person, level=2, officer=make_officer())
    assert again.assurance_verified_at == before
    assert not AuditEntry.objects.filter(action="person.assurance_raise").exists()


def test_who_verifies_must_be_one_active_officer_other_than_the_person() -> None:
    person = make_self_registered_citizen()
    officer = make_officer()
    with pytest.raises(ValidationFailed):
        person_assurance_raise(person=person, level=2)
    with pytest.raises(ValidationFailed):
        person_assurance_raise(person=person, level=2, officer=officer, agency=officer.agency)
    with pytest.raises(ValidationFailed):
        person_assurance_raise(person=person, level=3, officer=officer)
    with pytest.raises(PermissionDenied):
        person_assurance_raise(person=person, level=2, officer=make_officer(active=False))
    own = make_officer()
    own.user = person.user
    with pytest.raises(PermissionDenied) as exc:
        person_assurance_raise(person=person, level=2, officer=own)
    assert exc.value.code == "assurance_self_verification"
    person.refresh_from_db()
    assert person.assurance_level == 1


def test_the_data_migration_verifies_everyone_registered_before_levels_existed() -> None:
    registered = make_citizen()
    Person.objects.filter(pk=registered.pk).update(
        assurance_level=1, assurance_verified_at=None, assurance_verified_by=None
    )
    migration = importlib.import_module("civicore.identity.migrations.0006_existing_persons_verified")
    migration.verify_existing(django_apps, None)
    registered.refresh_from_db()
    assert registered.assurance_level == 2
    assert registered.assurance_verified_at == registered.created_at
    assert registered.assurance_verified_by == population_register()


# --- what services declare -----------------------------------------------------------------------


def test_services_declare_the_level_and_freshness_they_need() -> None:
    assert service_assurance(None).level == 1
    plain = make_service()
    assert service_assurance(plain.current_version).level == 1
    assert service_assurance(plain.current_version).fresh_second_factor_minutes is None
    strict = make_service(assurance_level=2, fresh_second_factor_minutes=15)
    requirement = service_assurance(strict.current_version)
    assert (requirement.level, requirement.fresh_second_factor_minutes) == (2, 15)


def test_the_definition_schema_checks_the_assurance_fields() -> None:
    birth = load_file(SERVICES_DIR / "birth-registration.yaml")
    assert birth["assurance_level"] == 2 and "fresh_second_factor_minutes" not in birth
    permit = load_file(SERVICES_DIR / "small-house-construction-permit.yaml")
    assert (permit["assurance_level"], permit["fresh_second_factor_minutes"]) == (2, 15)
    assert validate_definition(birth) == [] and validate_definition(permit) == []
    assert validate_definition({**birth, "assurance_level": 3})
    assert validate_definition({**birth, "assurance_level": "2"})
    assert validate_definition({**birth, "fresh_second_factor_minutes": 0})
    park = load_file(SERVICES_DIR / "park-event-permit.yaml")
    assert "assurance_level" not in park  # the default, 1


# --- portal step-up ------------------------------------------------------------------------------


def test_a_level_1_citizen_is_told_how_to_get_verified(client: Client) -> None:
    person = make_self_registered_citizen()
    service = make_service(assurance_level=2)
    log_in(client, person.user, second_factor=False)
    response = client.post(f"/applications/start/{service.code}/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "This service needs a verified identity" in html
    assert "one-stop service desk" in html and "citizen identity card" in html
    assert f'href="/services/{service.code}/"' in html
    assert not Application.objects.exists()


def test_a_level_1_citizen_can_use_level_1_services(client: Client) -> None:
    person = make_self_registered_citizen()
    service = make_service()
    log_in(client, person.user, second_factor=False)
    assert client.post(f"/applications/start/{service.code}/").status_code == 302
    assert Application.objects.filter(applicant=person).exists()


def test_submitting_a_draft_also_checks_the_level(client: Client) -> None:
    """A draft started before the service asked for more, or by another route, cannot be filed."""
    person = make_self_registered_citizen()
    service = make_service(assurance_level=2)
    application = application_services.application_start(person=person, service=service)
    log_in(client, person.user, second_factor=False)
    response = client.post(f"/applications/{application.public_id}/", {**VALID_ANSWERS, "action": "submit"})
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.status == Application.Status.DRAFT
    assert application.answers["child_full_name"] == VALID_ANSWERS["child_full_name"]  # the draft is kept


def _age_second_factor(client: Client, minutes: int) -> None:
    session = client.session
    records = session[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] -= minutes * 60
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()


def test_a_recent_second_factor_is_enough(client: Client) -> None:
    person = make_citizen()
    service = make_service(assurance_level=2, fresh_second_factor_minutes=15)
    log_in(client, person.user)
    assert client.post(f"/applications/start/{service.code}/").status_code == 302


def test_an_old_second_factor_is_confirmed_again_and_the_citizen_continues_where_they_were(
    client: Client,
) -> None:
    person = make_citizen()
    service = make_service(assurance_level=2, fresh_second_factor_minutes=15)
    log_in(client, person.user)
    _age_second_factor(client, 20)

    start = f"/applications/start/{service.code}/"
    asked = client.post(start, {"use_profile": "0"})
    assert asked.status_code == 302
    assert asked["Location"] == f"/accounts/2fa/reauthenticate/?next={start.replace('/', '%2F')}"
    assert not Application.objects.exists()
    page = client.get(asked["Location"]).content.decode()
    assert "confirm it is you with your second factor" in page

    code = RecoveryCodes(
        Authenticator.objects.get(user=person.user, type="recovery_codes")
    ).get_unused_codes()[0]
    resumed = client.post(asked["Location"], {"code": code})
    # allauth replays the suspended request: the application is started, with the choice made.
    application = Application.objects.get(applicant=person)
    assert application.prefill == {}
    assert resumed.status_code == 302
    assert resumed["Location"] == f"/applications/{application.public_id}/"


def test_a_password_reauthentication_is_not_a_second_factor(client: Client) -> None:
    person = make_citizen()
    service = make_service(assurance_level=1, fresh_second_factor_minutes=5)
    log_in(client, person.user)
    _age_second_factor(client, 10)
    from civicore.identity.tests.factories import PASSWORD

    client.get("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    response = client.post(f"/applications/start/{service.code}/")
    assert response["Location"].startswith("/accounts/2fa/reauthenticate/")


def test_without_any_second_factor_the_citizen_is_told_to_set_one_up(client: Client) -> None:
    person = make_self_registered_citizen()
    service = make_service(fresh_second_factor_minutes=15)
    log_in(client, person.user, second_factor=False)
    response = client.post(f"/applications/start/{service.code}/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Set up a second factor" in html and 'href="/accounts/2fa/"' in html


# --- API -----------------------------------------------------------------------------------------


def _api(person: Person) -> Client:
    _token, secret = api_token_create(user=person.user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_the_api_refuses_a_level_1_filing_with_a_stable_code() -> None:
    person = make_self_registered_citizen()
    service = make_service(assurance_level=2)
    response = _api(person).post(
        "/api/v1/applications",
        {"service": service.code, "answers": VALID_ANSWERS},
        content_type="application/json",
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "assurance_level_too_low"
    assert body["details"] == {"required_level": 2, "assurance_level": 1}
    assert not Application.objects.exists()


def test_the_api_submit_endpoint_checks_the_level_too() -> None:
    person = make_self_registered_citizen()
    service = make_service(assurance_level=2)
    application = application_services.application_start(person=person, service=service)
    response = _api(person).post(
        f"/api/v1/applications/{application.public_id}/submit", {}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "assurance_level_too_low"


def test_the_api_asks_for_a_fresh_second_factor_that_a_token_cannot_give() -> None:
    person = make_citizen()
    service = make_service(assurance_level=2, fresh_second_factor_minutes=15)
    response = _api(person).post(
        "/api/v1/applications", {"service": service.code}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "fresh_second_factor_required"
    assert response.json()["details"] == {"within_minutes": 15}


def test_the_api_accepts_a_verified_person_with_a_fresh_second_factor(client: Client) -> None:
    person = make_citizen()
    service = make_service(assurance_level=2, fresh_second_factor_minutes=15)
    log_in(client, person.user)
    response = client.post("/api/v1/applications", {"service": service.code}, content_type="application/json")
    assert response.status_code == 201


def test_assurance_require_checks_the_level_before_freshness(rf: RequestFactory) -> None:
    person = make_self_registered_citizen()
    request = rf.post("/")
    request.user = person.user
    request.session = Client().session
    with pytest.raises(AssuranceLevelTooLow):
        assurance_require(request=request, person=person, level=2, fresh_minutes=15)
    with pytest.raises(FreshSecondFactorRequired):
        assurance_require(request=request, person=person, level=1, fresh_minutes=15)
    assurance_require(request=request, person=person, level=1)


# --- amr and acr ---------------------------------------------------------------------------------


def _request_with(rf: RequestFactory, user: Any, records: list[dict[str, Any]]) -> Any:
    client = Client()
    client.force_login(user)
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    request = rf.get("/")
    request.user = user
    request.session = session
    return request


def _passkey(user: Any, *, synced: bool) -> Authenticator:
    """A WebAuthn credential as a browser registers it, made here with fido2's own types."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from fido2.cose import ES256
    from fido2.utils import websafe_encode
    from fido2.webauthn import (
        AttestationObject,
        AttestedCredentialData,
        AuthenticatorData,
        CollectedClientData,
    )

    credential_id = os.urandom(16)
    public_key = ES256.from_cryptography_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    flags = AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.UV | AuthenticatorData.FLAG.AT
    if synced:
        flags |= AuthenticatorData.FLAG.BE
    auth_data = AuthenticatorData.create(
        hashlib.sha256(b"localhost").digest(),
        flags,
        0,
        AttestedCredentialData.create(b"\0" * 16, credential_id, public_key),
    )
    client_data = CollectedClientData.create(
        type="webauthn.create", challenge=os.urandom(16), origin="http://localhost"
    )
    credential = {
        "id": websafe_encode(credential_id),
        "rawId": websafe_encode(credential_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": websafe_encode(bytes(client_data)),
            "attestationObject": websafe_encode(bytes(AttestationObject.create("none", auth_data, {}))),
        },
        "clientExtensionResults": {"credProps": {"rk": True}},
    }
    return Authenticator.objects.create(
        user=user, type=Authenticator.Type.WEBAUTHN, data={"name": "Key", "credential": credential}
    )


def test_amr_for_a_password_and_an_authenticator_app(rf: RequestFactory) -> None:
    person = make_citizen()
    now = time.time()
    request = _request_with(
        rf, person.user, [{"method": "password", "at": now}, {"method": "mfa", "type": "totp", "at": now}]
    )
    assert session_amr(request) == ["pwd", "otp", "mfa"]
    assert session_acr(request) == ACR_VERIFIED


def test_amr_for_a_password_alone(rf: RequestFactory) -> None:
    person = make_citizen()
    request = _request_with(rf, person.user, [{"method": "password", "at": time.time()}])
    assert session_amr(request) == ["pwd"]
    assert session_acr(request) == ACR_SELF_REGISTERED  # a verified identity, but one factor


def test_amr_for_a_device_bound_passkey_login(rf: RequestFactory) -> None:
    person = make_self_registered_citizen()
    key = _passkey(person.user, synced=False)
    record = {"method": "mfa", "type": "webauthn", "id": key.pk, "passwordless": True, "at": time.time()}
    request = _request_with(rf, person.user, [record])
    assert session_amr(request) == ["hwk", "user", "mfa"]
    assert session_acr(request) == ACR_SELF_REGISTERED  # two factors, but a self-registered identity


def test_amr_for_a_synced_passkey_used_as_second_factor(rf: RequestFactory) -> None:
    person = make_citizen()
    key = _passkey(person.user, synced=True)
    now = time.time()
    records = [
        {"method": "password", "at": now},
        {"method": "mfa", "type": "webauthn", "id": key.pk, "at": now},
    ]
    request = _request_with(rf, person.user, records)
    assert session_amr(request) == ["pwd", "swk", "mfa"]
    assert session_acr(request) == ACR_VERIFIED


def test_records_of_another_user_or_no_login_describe_nothing(rf: RequestFactory) -> None:
    person, other = make_citizen(), make_citizen()
    request = _request_with(rf, other.user, [{"method": "password", "at": time.time()}])
    request.user = person.user
    assert session_amr(request) == []
    anonymous = rf.get("/")
    from django.contrib.auth.models import AnonymousUser

    anonymous.user = AnonymousUser()
    assert session_amr(anonymous) == [] and session_acr(anonymous) == ""


def test_forms_may_prefill_the_scalar_profile_items_but_not_the_structured_ones() -> None:
    birth = load_file(SERVICES_DIR / "birth-registration.yaml")
    field = next(iter(birth["prefill"]))  # a form field that is pre-filled today
    for item in ("current_address", "marital_status"):
        assert validate_definition({**birth, "prefill": {**birth["prefill"], field: item}}) == []
    for item in ("household_members", "vehicle", "education", "favourite_colour"):
        assert validate_definition({**birth, "prefill": {**birth["prefill"], field: item}})
