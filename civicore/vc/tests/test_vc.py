"""Credentials beside results: issuance, the log, status changes, sharing and verification."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.audit.models import AuditEntry
from civicore.core import jobs
from civicore.credentials.models import ResultDocument
from civicore.credentials.tests.factories import make_application
from civicore.transparency.models import LogEntry
from civicore.vc import keys, selectors, services
from civicore.vc.models import Credential, IssuerKey, Presentation, PresentationCheck
from civicore.verifier import sdjwt, statuslist, trustlist

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    keys.reset_cache()
    services._status_cache.clear()
    yield
    keys.reset_cache()
    services._status_cache.clear()


def issued(signing_dir: Path) -> Credential:
    application = make_application(answers={"child_full_name": "Trần Thị Ngọc Ánh"})
    jobs.handler_for("credentials.issue")(application_id=application.pk)
    return Credential.objects.get(document__application=application)


def test_issuing_a_result_issues_its_credential_and_logs_both_hashes(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    document = credential.document
    verdict = selectors.verify(credential.token)
    assert verdict.ok, verdict
    assert verdict.issuer == keys.issuer_id(credential.agency)
    assert verdict.claims["result"]["child_full_name"] == "Trần Thị Ngọc Ánh"
    assert verdict.claims["reference"] == document.application.reference
    assert set(verdict.claims["decided_on"]) == {"date", "year"}
    logged = set(LogEntry.objects.values_list("kind", "document_hash"))
    assert ("issued", document.sha256) in logged
    assert ("issued", credential.sha256) in logged
    assert AuditEntry.objects.filter(action="credential.issued", person=credential.person).count() == 1


def test_issuing_again_returns_the_same_credential(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    again = services.credential_issue(document_id=credential.document_id)
    assert again.pk == credential.pk
    assert LogEntry.objects.count() == 2


def test_token_and_holder_key_are_encrypted_at_rest(signing_dir: Path) -> None:
    from django.db import connection

    credential = issued(signing_dir)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token, holder_key FROM vc_credential WHERE id = %s", [credential.pk])
        token, holder = cursor.fetchone()
    assert "Trần" not in token and not token.startswith("ey")
    assert "PRIVATE KEY" not in holder


def test_presentation_shows_only_the_chosen_claims_and_records_who_checked(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    user = credential.person.user
    presentation = services.presentation_create(
        user=user,
        public_id=credential.public_id,
        paths=[("decided_on", "year"), ("result", "child_full_name")],
        audience="Vietcombank",
        lifetime="1d",
    )
    response = Client().get(f"/shared/{presentation.public_id}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-status="valid"' in body
    assert "Trần Thị Ngọc Ánh" in body
    assert credential.document.application.reference not in body
    verdict = selectors.verify(
        presentation.token,
        audience=services.presentation_url(presentation),
        nonce=presentation.public_id,
        require_key_binding=True,
    )
    assert verdict.ok
    assert set(verdict.claims["decided_on"]) == {"year"}
    assert "reference" not in verdict.claims and "holder_name" not in verdict.claims
    [check] = PresentationCheck.objects.filter(presentation=presentation)
    assert check.verdict == "valid" and check.via == "link"
    owner = Client()
    owner.force_login(user)
    page = owner.get(f"/my-documents/{credential.public_id}/").content.decode()
    assert "Vietcombank" in page and "No one has checked it yet." not in page


def test_presentation_for_another_audience_or_replayed_late_fails(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    presentation = services.presentation_create(
        user=credential.person.user,
        public_id=credential.public_id,
        paths=[("result", "child_full_name")],
        audience="An employer",
        lifetime="1h",
    )
    other = selectors.verify(
        presentation.token, audience="https://elsewhere.example", nonce=presentation.public_id
    )
    assert other.status == "wrong_audience"
    late = sdjwt.verify(
        presentation.token,
        trust=keys.trust_list(),
        now=int(time.time()) + 2 * 3600,
        audience=services.presentation_url(presentation),
        nonce=presentation.public_id,
        statuses=selectors._status_from_db,
    )
    assert late.status == "presentation_expired"


def test_a_citizen_cannot_share_someone_elses_document_or_unknown_claims(signing_dir: Path) -> None:
    from civicore.core.errors import NotFound, ValidationFailed
    from civicore.identity.tests.factories import make_citizen

    credential = issued(signing_dir)
    stranger = make_citizen().user
    with pytest.raises(NotFound):
        services.presentation_create(
            user=stranger, public_id=credential.public_id, paths=[("reference",)], audience="x", lifetime="1d"
        )
    with pytest.raises(ValidationFailed) as exc:
        services.presentation_create(
            user=credential.person.user,
            public_id=credential.public_id,
            paths=[("iss",)],
            audience="x",
            lifetime="1d",
        )
    assert exc.value.code == "unknown_claim"
    client = Client()
    client.force_login(stranger)
    assert client.get(f"/my-documents/{credential.public_id}/").status_code == 404


def test_share_form_errors_are_specific_and_keep_the_choices(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(credential.person.user)
    response = client.post(
        f"/my-documents/{credential.public_id}/",
        {"claim": ["result/child_full_name"], "audience": "   ", "lifetime": "1d"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Say who you are sharing it with." in body
    assert 'value="result/child_full_name" checked' in body
    assert Presentation.objects.count() == 0
    hostile = client.post(
        f"/my-documents/{credential.public_id}/",
        {"claim": ["../../etc", "<script>"], "audience": "Bank", "lifetime": "forever"},
    )
    assert hostile.status_code == 400


def test_officer_revokes_and_everyone_learns(
    signing_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    credential = issued(signing_dir)
    officer = make_officer(agency=credential.agency, roles=("issuer", "caseworker"))
    presentation = services.presentation_create(
        user=credential.person.user,
        public_id=credential.public_id,
        paths=[("result", "child_full_name")],
        audience="Bank",
        lifetime="1d",
    )
    client = back_office_client(officer.user)
    response = client.post(
        f"/office/documents/{credential.public_id}/status",
        {"action": "suspend", "reason": "Checking a complaint"},
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.status == "suspended"
    assert selectors.verify(credential.token).status == "suspended"
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_status_change(
            user=officer.user, public_id=credential.public_id, action="revoke", reason="Issued in error"
        )
    assert selectors.verify(credential.token).status == "revoked"
    assert ResultDocument.objects.get(pk=credential.document_id).revoked_at is not None
    assert (
        Client().get(f"/shared/{presentation.public_id}/").content.decode().count('data-status="revoked"')
        == 1
    )
    kinds = list(LogEntry.objects.order_by("position").values_list("kind", flat=True))
    assert kinds == ["issued", "issued", "suspended", "suspended", "revoked", "revoked"]
    from civicore.notify.models import Notification

    subjects = list(
        Notification.objects.filter(user=credential.person.user).values_list("subject", flat=True)
    )
    assert any("revoked" in s or "thu hồi" in s for s in subjects)
    # The published status list says so too, signed by the agency's key.
    token = services.status_list_token(credential.agency)
    lst = statuslist.load_status_list_token(
        token, trust=keys.trust_list(), uri=services.status_list_uri(credential.agency), now=int(time.time())
    )
    assert lst.get(credential.status_index) == statuslist.INVALID


def test_status_change_refusals(signing_dir: Path) -> None:
    from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed

    credential = issued(signing_dir)
    caseworker = make_officer(agency=credential.agency, roles=("caseworker",))
    other = make_officer(roles=("issuer",))
    issuer = make_officer(agency=credential.agency, roles=("issuer",))
    refusals = [
        (caseworker, "revoke", "x", PermissionDenied),
        (other, "revoke", "x", PermissionDenied),
        (issuer, "revoke", " ", ValidationFailed),
        (issuer, "drop", "x", ValidationFailed),
        (issuer, "reinstate", "x", Conflict),
    ]
    for officer, action, reason, error in refusals:
        with pytest.raises(error):
            services.credential_status_change(
                user=officer.user, public_id=credential.public_id, action=action, reason=reason
            )
    assert Credential.objects.get(pk=credential.pk).status == "valid"
    assert LogEntry.objects.count() == 2


def test_key_rotation_keeps_old_credentials_valid_and_compromise_fails_later_ones(signing_dir: Path) -> None:
    first = issued(signing_dir)
    old_kid = first.issuer_key.kid
    new = keys.issuer_key_rotate(agency=first.agency, immediately=True)
    assert new.kid != old_kid
    keys.reset_cache()
    assert selectors.verify(first.token).ok
    # Compromised from before the credential was signed: it fails; the agency signs with a new key.
    keys.issuer_key_compromised(kid=old_kid, since=first.issued_at - dt.timedelta(seconds=5), reason="Leaked")
    keys.reset_cache()
    assert selectors.verify(first.token).status == "key_compromised"
    assert IssuerKey.objects.filter(agency=first.agency, compromised_since__isnull=True).exists()


def test_trust_list_is_signed_by_the_platform_and_lists_every_key(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    keys.issuer_key_rotate(agency=credential.agency)
    keys.reset_cache()
    response = Client().get("/api/v1/vc/trust-list")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwt"
    loaded = trustlist.load_trust_list(
        response.content.decode(), anchors=keys.trust_anchors(), now=int(time.time())
    )
    issuer = loaded.issuers[keys.issuer_id(credential.agency)]
    assert len(issuer.keys) == 2
    assert issuer.name["vi"] == credential.agency.name_vi


def test_verify_api_gives_verdicts_never_errors(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    client = Client()
    ok = client.post("/api/v1/vc/verify", {"token": credential.token}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["status"] == "valid"
    jwt, *rest = credential.token.split("~")
    head, payload, signature = jwt.split(".")
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    bad = client.post(
        "/api/v1/vc/verify",
        {"token": "~".join([f"{head}.{flipped}.{signature}", *rest])},
        content_type="application/json",
    )
    assert bad.status_code == 200 and bad.json()["status"] in {"tampered", "malformed"}
    for junk in ["", "~~~", "eyJ.eyJ.x~", "\x00" * 100, "a" * 10_000]:
        answer = client.post("/api/v1/vc/verify", {"token": junk}, content_type="application/json")
        assert answer.status_code == 200 and answer.json()["valid"] is False
    too_long = client.post("/api/v1/vc/verify", {"token": "a" * 70_000}, content_type="application/json")
    assert too_long.status_code == 422 and too_long.json()["code"] == "token_too_long"
    not_json = client.post("/api/v1/vc/verify", "{", content_type="application/json")
    assert not_json.status_code in {400, 422}


def test_status_list_api(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    response = Client().get(f"/api/v1/vc/status-lists/{credential.agency.code}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/statuslist+jwt"
    missing = Client().get("/api/v1/vc/status-lists/nobody")
    assert missing.status_code == 404 and missing.json()["code"] == "agency_not_found"


def test_withdrawn_link_is_gone(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    user = credential.person.user
    presentation = services.presentation_create(
        user=user, public_id=credential.public_id, paths=[("reference",)], audience="Bank", lifetime="1d"
    )
    client = Client()
    client.force_login(user)
    assert client.post(f"/my-documents/shared/{presentation.public_id}/withdraw").status_code == 302
    assert Client().get(f"/shared/{presentation.public_id}/").status_code == 410
    assert Client().get(f"/shared/{presentation.public_id}/presentation.sd-jwt").status_code == 404
    assert Client().get("/shared/nope/").status_code == 404


def test_wallet_lists_only_ones_own(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(credential.person.user)
    page = client.get("/my-documents/").content.decode()
    assert credential.document.title in page
    from civicore.identity.tests.factories import make_citizen

    other = Client(HTTP_ACCEPT_LANGUAGE="en")
    other.force_login(make_citizen().user)
    assert credential.document.title not in other.get("/my-documents/").content.decode()
    assert Client().get("/my-documents/").status_code == 302
    expires = timezone.now()
    assert expires


def test_verify_page_checks_pasted_and_uploaded_credentials(signing_dir: Path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    credential = issued(signing_dir)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    pasted = client.post("/verify/", {"token": credential.token})
    assert pasted.status_code == 200
    assert 'data-status="valid"' in pasted.content.decode()
    upload = SimpleUploadedFile("doc.sd-jwt", credential.token.encode(), content_type="application/dc+sd-jwt")
    uploaded = client.post("/verify/", {"file": upload})
    assert 'data-status="valid"' in uploaded.content.decode()
    tampered = client.post("/verify/", {"token": credential.token.replace("~", "~x", 1)})
    assert tampered.status_code == 200 and 'data-status="valid"' not in tampered.content.decode()
    empty = client.post("/verify/", {"token": ""})
    assert (
        empty.status_code == 400
        and "Paste the credential or presentation to check." in empty.content.decode()
    )
    huge = client.post("/verify/", {"token": "e" * 70_000})
    assert huge.status_code == 400 and "too long" in huge.content.decode()


def test_verify_page_sends_a_shared_link_to_its_page(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    presentation = services.presentation_create(
        user=credential.person.user,
        public_id=credential.public_id,
        paths=[("reference",)],
        audience="B",
        lifetime="1d",
    )
    response = Client().post("/verify/", {"code": services.presentation_url(presentation)})
    assert response.status_code == 302 and response["Location"] == f"/shared/{presentation.public_id}/"
    pasted = Client().post("/verify/", {"token": presentation.token})
    assert 'data-status="valid"' in pasted.content.decode()


def test_api_for_a_citizens_own_credentials(signing_dir: Path) -> None:
    credential = issued(signing_dir)
    client = Client()
    client.force_login(credential.person.user)
    listed = client.get("/api/v1/vc/credentials").json()
    assert [row["id"] for row in listed] == [str(credential.public_id)]
    one = client.get(f"/api/v1/vc/credentials/{credential.public_id}").json()
    assert one["token"] == credential.token and one["status"] == "valid"
    made = client.post(
        f"/api/v1/vc/credentials/{credential.public_id}/presentations",
        {"claims": ["decided_on/year"], "audience": "Employer", "lifetime": "7d"},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    body = made.json()
    verdict = selectors.verify(
        body["token"], audience=body["url"], nonce=body["id"], require_key_binding=True
    )
    assert verdict.ok and verdict.claims["decided_on"] == {"year": timezone.localdate().year}
    bad = client.post(
        f"/api/v1/vc/credentials/{credential.public_id}/presentations",
        {"claims": ["nope"], "audience": "Employer", "lifetime": "7d"},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_claim"
    forever = client.post(
        f"/api/v1/vc/credentials/{credential.public_id}/presentations",
        {"claims": ["reference"], "audience": "Employer", "lifetime": "forever"},
        content_type="application/json",
    )
    assert forever.status_code == 422 and forever.json()["code"] == "invalid_lifetime"
    from civicore.identity.tests.factories import make_citizen

    stranger = Client()
    stranger.force_login(make_citizen().user)
    assert stranger.get(f"/api/v1/vc/credentials/{credential.public_id}").status_code == 404
    # A check through the API of a shared presentation is listed for its holder.
    client.post("/api/v1/vc/verify", {"token": body["token"]}, content_type="application/json")
    assert PresentationCheck.objects.filter(presentation__public_id=body["id"], via="api").count() == 1


def test_compromised_key_command_reissues_what_it_signed(signing_dir: Path) -> None:
    from django.core.management import call_command

    credential = issued(signing_dir)
    old_token, old_kid = credential.token, credential.issuer_key.kid
    since = (credential.issued_at - dt.timedelta(minutes=1)).isoformat()
    call_command("credentials", "compromised", old_kid, "--since", since, "--reason", "Key file leaked")
    keys.reset_cache()
    credential.refresh_from_db()
    assert credential.issuer_key.kid != old_kid
    assert selectors.verify(old_token).status == "key_compromised"
    renewed = selectors.verify(credential.token)
    assert renewed.ok and renewed.claims["result"]["child_full_name"] == "Trần Thị Ngọc Ánh"
    assert LogEntry.objects.filter(kind="reissued", document_hash=credential.sha256).count() == 1
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("credentials", "compromised", old_kid, "--since", since, "--reason", "again")
    with pytest.raises(CommandError):
        call_command("credentials", "compromised", "nope", "--since", "yesterday", "--reason", "x")


def test_an_unpaid_fee_due_before_release_holds_the_credential_back(signing_dir: Path) -> None:
    from civicore.core.errors import Conflict
    from civicore.credentials.tests.factories import DEFINITION, make_service

    definition = {**DEFINITION, "fee": {"amount": 10000, "currency": "VND", "due": "before_release"}}
    application = make_application(version=make_service(definition=definition))
    jobs.handler_for("credentials.issue")(application_id=application.pk)
    credential = Credential.objects.get(document__application=application)
    user = credential.person.user
    with pytest.raises(Conflict) as exc:
        services.presentation_create(
            user=user, public_id=credential.public_id, paths=[("reference",)], audience="Bank", lifetime="1d"
        )
    assert exc.value.code == "fee_unpaid"
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    assert client.get(f"/my-documents/{credential.public_id}/credential.sd-jwt").status_code == 302
    assert "Pay the application" in client.get(f"/my-documents/{credential.public_id}/").content.decode()
    api = client.get(f"/api/v1/vc/credentials/{credential.public_id}")
    assert api.status_code == 409 and api.json()["code"] == "fee_unpaid"


def test_the_demo_gives_its_first_citizen_a_birth_credential_once(signing_dir: Path) -> None:
    from civicore.applications.models import Application
    from civicore.core import demo

    demo.load()
    demo.load()
    [credential] = Credential.objects.filter(person__user__email=demo.CITIZENS[0][0])
    verdict = selectors.verify(credential.token)
    assert verdict.ok
    assert verdict.claims["result"]["child_date_of_birth"] == {"date": "2026-03-14", "year": 2026}
    assert Application.objects.filter(applicant=credential.person).exclude(status="draft").count() == 1


def test_the_wallet_links_each_credential_to_its_proof_in_the_log(signing_dir: Path) -> None:
    from civicore.transparency import merkle
    from civicore.transparency.services import tree_head_sign_now

    credential = issued(signing_dir)
    tree_head_sign_now()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(credential.person.user)
    page = client.get(f"/my-documents/{credential.public_id}/").content.decode()
    link = f"/api/v1/transparency/proofs/inclusion?hash={credential.sha256}"
    assert link in page
    answer = Client().get(link).json()
    assert answer["entry"]["document_hash"] == credential.sha256
    head = Client().get("/api/v1/transparency/tree-heads/latest").json()
    import base64

    assert merkle.verify_inclusion(
        base64.b64decode(answer["entry"]["leaf_hash"]),
        answer["entry"]["position"],
        answer["size"],
        [base64.b64decode(p) for p in answer["proof"]],
        base64.b64decode(head["root"]),
    )
