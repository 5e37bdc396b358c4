"""The authorization matrix: every page and API operation, for every kind of caller.

Each endpoint of the site (Django's URL resolver) and of the API (the OpenAPI schema) must have a
row in ROWS saying which roles it lets through; the test sends each row's request as each role,
with real objects in the path, and compares. A new endpoint without a row fails
`test_every_endpoint_has_a_row` with the row to add, so nobody forgets to decide who may use it.

Outcomes: a role is *let through* when the response is 2xx, a redirect somewhere other than a
login page, or a 4xx about the input (400, 409, 415, 422: it got past the checks); it is
*refused* on 401, 403, 404, a redirect to a login page, or an OAuth error about the client or
token. 405 and 5xx are errors in the row or the code.

Adding a row: `Row("GET", "<route as Django prints it>", <roles let through>)`, with `params`
(values for the route's placeholders, taken from the world of objects below), `data` / `body`
for POSTs and a `note` when the answer is surprising.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from civicore.agencies.models import Officer
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.applications import services as application_services
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, make_submitted, pdf_upload
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.organisations.acting import SESSION_KEY
from civicore.organisations.models import Membership, Organisation, RoleGrant
from civicore.organisations.registry import BusinessRecord, FileBusinessRegistry
from civicore.organisations.services import (
    member_accept,
    member_invite,
    organisation_register,
    role_grant,
)

pytestmark = pytest.mark.django_db

# --- roles ------------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
CITIZEN = "citizen"  # a citizen acting for themselves, owner of `application`
BUSINESS_FILE = "business_file"  # acting for `organisation`, `file` grant for `service`
BUSINESS_VIEW = "business_view"  # acting for `organisation`, `view` grant for `service`
BUSINESS_ADMIN = "business_admin"  # acting for `organisation`: its admin, with no grant
CASEWORKER = "caseworker"  # officer of `agency`, role caseworker
DECIDER = "decider"  # officer of `agency`, role decider
OTHER_AGENCY = "other_agency"  # officer of another agency holding every role there
AGENCY_ADMIN = "agency_admin"  # officer of `agency`, role agency_admin only
REPORT_HANDLER = "report_handler"  # officer of `agency`, role report_handler (its problem reports)
REPORT_TRIAGER = "report_triager"  # officer of a third agency, role report_triager (routes any report)
SENSOR_OPERATOR = "sensor_operator"  # officer of `agency`, role sensor_operator (watch, alarms, commands)
SENSOR_ENGINEER = "sensor_engineer"  # officer of `agency`, role sensor_engineer (also devices and rules)
CASHIER = "cashier"  # officer of `agency`, role cashier (payment.view)
PAYMENTS_OFFICER = "payments_officer"  # officer of `agency`, role payments_officer (also payment.refund)

ROLES = (
    ANONYMOUS,
    CITIZEN,
    BUSINESS_FILE,
    BUSINESS_VIEW,
    BUSINESS_ADMIN,
    CASEWORKER,
    DECIDER,
    OTHER_AGENCY,
    AGENCY_ADMIN,
    REPORT_HANDLER,
    REPORT_TRIAGER,
    SENSOR_OPERATOR,
    SENSOR_ENGINEER,
    CASHIER,
    PAYMENTS_OFFICER,
)
BUSINESS = frozenset({BUSINESS_FILE, BUSINESS_VIEW, BUSINESS_ADMIN})

EVERYONE = frozenset(ROLES)
NOBODY: frozenset[str] = frozenset()
SIGNED_IN = EVERYONE - {ANONYMOUS}
PEOPLE = frozenset({CITIZEN}) | BUSINESS  # users with a citizen identity
OFFICERS = frozenset({CASEWORKER, DECIDER, OTHER_AGENCY, AGENCY_ADMIN})
CASE_OFFICERS = frozenset({CASEWORKER, DECIDER})  # case.view in the case's agency
SYSTEMS = frozenset({AGENCY_ADMIN, OTHER_AGENCY})  # systems.manage / agency.admin somewhere
PAY_VIEW = frozenset({CASHIER, PAYMENTS_OFFICER})  # payment.view in `agency`


def only(*roles: str) -> frozenset[str]:
    return frozenset(roles)


# --- the world the requests run against ---------------------------------------------------------

BUSINESS_NUMBER = "0319999999"


@dataclass
class World:
    users: dict[str, Any]
    officers: dict[str, Officer]
    persons: dict[str, Person]
    agency: Any
    service: Any
    application: Application  # the citizen's own, submitted
    org_application: Application  # filed by business_file for the organisation, submitted
    organisation: Organisation
    invitation: Membership  # of the citizen, pending
    view_membership: Membership
    file_grant: RoleGrant
    system: Any  # an AgencyApplication of `agency`
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def case(self) -> Any:
        return self.application.case

    @property
    def document(self) -> Any:
        return self.application.documents.get()

    @property
    def org_document(self) -> Any:
        return self.org_application.documents.get()


def build_world() -> World:
    from civicore.registry.tests.factories import make_application as make_system

    agency = AgencyFactory()
    service = make_service(agency=agency)
    persons = {role: make_citizen() for role in (CITIZEN, BUSINESS_FILE, BUSINESS_VIEW, BUSINESS_ADMIN)}
    application = make_submitted(persons[CITIZEN], service)

    FileBusinessRegistry.add(
        BusinessRecord(
            registration_number=BUSINESS_NUMBER,
            name="Công ty TNHH Ma Trận",
            address="1 Đường Thử, xã An Bình",
            representative_national_id=persons[BUSINESS_ADMIN].national_id,
        )
    )
    admin_person = persons[BUSINESS_ADMIN]
    organisation = organisation_register(person=admin_person, registration_number=BUSINESS_NUMBER)
    memberships = {}
    for role in (BUSINESS_FILE, BUSINESS_VIEW):
        invited = member_invite(
            admin=admin_person, organisation=organisation, national_id=persons[role].national_id
        )
        memberships[role] = member_accept(person=persons[role], membership=invited)
    until = timezone.now() + dt.timedelta(days=30)
    grants = {
        role: role_grant(
            admin=admin_person,
            organisation=organisation,
            membership=memberships[role],
            permission=permission,
            service=service,
            expires_at=until,
        )
        for role, permission in ((BUSINESS_FILE, "file"), (BUSINESS_VIEW, "view"))
    }
    invitation = member_invite(
        admin=admin_person, organisation=organisation, national_id=persons[CITIZEN].national_id
    )
    draft = application_services.application_start(
        person=persons[BUSINESS_FILE], service=service, organisation=organisation
    )
    application_services.document_attach(
        application=draft, requirement="birth-certificate", upload=pdf_upload()
    )
    org_application = application_services.application_submit(
        application=draft, answers=dict(VALID_ANSWERS), actor=persons[BUSINESS_FILE]
    )

    other = AgencyFactory()
    officers = {
        CASEWORKER: make_officer(agency, roles=("caseworker",)),
        DECIDER: make_officer(agency, roles=("decider",)),
        AGENCY_ADMIN: make_officer(agency, roles=("agency_admin",)),
        OTHER_AGENCY: make_officer(
            other,
            roles=(
                "caseworker",
                "decider",
                "issuer",
                "agency_admin",
                "identity_verifier",
                "report_handler",
                "ai_steward",
                "sensor_engineer",
                "payments_officer",
                "agency_head",
                "consultation_manager",
            ),
        ),
        REPORT_HANDLER: make_officer(agency, roles=("report_handler",)),
        REPORT_TRIAGER: make_officer(AgencyFactory(), roles=("report_triager",)),
        SENSOR_OPERATOR: make_officer(agency, roles=("sensor_operator",)),
        SENSOR_ENGINEER: make_officer(agency, roles=("sensor_engineer",)),
        CASHIER: make_officer(agency, roles=("cashier",)),
        PAYMENTS_OFFICER: make_officer(agency, roles=("payments_officer",)),
    }
    system, _key = make_system(agency=agency)
    users: dict[str, Any] = {ANONYMOUS: None}
    users.update({role: person.user for role, person in persons.items()})
    users.update({role: officer.user for role, officer in officers.items()})
    return World(
        users=users,
        officers=officers,
        persons=persons,
        agency=agency,
        service=service,
        application=application,
        org_application=org_application,
        organisation=organisation,
        invitation=invitation,
        view_membership=memberships[BUSINESS_VIEW],
        file_grant=grants[BUSINESS_FILE],
        system=system,
        extra=report_objects(agency, persons[CITIZEN].user),
    )


def report_objects(agency: Any, reporter: Any) -> dict[str, Any]:
    """A problem report of the citizen, routed to `agency`, with one unpublished photo."""
    from civicore.reports.models import ReportCategory
    from civicore.reports.services import report_file
    from civicore.reports.tests.factories import jpeg_bytes

    ReportCategory.objects.create(code="streetlight", name_vi="Đèn đường hỏng", agency=agency, sla_days=3)
    report = report_file(
        reporter=reporter,
        description="Đèn đường trước số 12 bị hỏng",
        latitude=21.0285,
        longitude=105.8542,
        category_code="streetlight",
        photos=[jpeg_bytes()],
    )
    return {"report": report, "report_photo": report.photos.get()}


def _report(w: World, **more: Any) -> dict[str, Any]:
    return {"reference": w.extra["report"].reference, **more}


def _office_report(w: World, **more: Any) -> dict[str, Any]:
    return {"report_id": w.extra["report"].pk, **more}


def issue_result(w: World, settings: Any, directory: Any) -> None:
    """Approve the citizen's case and sign its result (for the result download rows)."""
    from civicore.cases.services import case_approve, case_claim
    from civicore.credentials.services import result_issue, signing_material_reset, signing_setup

    signing_setup(directory=directory)
    settings.SIGNING_DIR = directory
    signing_material_reset()
    decider = w.officers[DECIDER]
    case_approve(case=case_claim(case=w.case, officer=decider), officer=decider)
    result_issue(application_id=w.application.pk)


def issue_credential(w: World, settings: Any, directory: Any) -> None:
    """The result's credential and a presentation of it the citizen shared."""
    from civicore.vc.services import credential_issue, presentation_create

    issue_result(w, settings, directory)
    credential = credential_issue(document_id=w.application.result_document.pk)
    w.extra["credential"] = credential
    w.extra["presentation"] = presentation_create(
        user=w.users[CITIZEN],
        public_id=credential.public_id,
        paths=[("reference",)],
        audience="Bank",
        lifetime="1d",
    )


def payment_objects(w: World) -> dict[str, Any]:
    """A fee of `agency` the citizen paid by bank transfer, with a bank-transfer refund on its
    way and the rest proposed for refund, and a credit on the agency's account that matches
    nothing (for the queue)."""
    from civicore.payments import services as payment_services
    from civicore.payments.models import StatementImport, StatementLine
    from civicore.payments.tests.factories import FEE, collection_account, make_payment

    service = make_service(agency=w.agency, fee=FEE)
    account = collection_account(w.agency)
    payment = make_payment(make_submitted(w.persons[CITIZEN], service))
    payment_services.payment_settle(
        reference=payment.reference, amount_minor=payment.amount_minor, currency=payment.currency,
        source="statement", key="bank:matrix:1", at=timezone.now(), bank_reference="FT-MATRIX-1",
    )  # fmt: skip
    refund = payment_services.refund_request(
        payment=payment, amount_minor=1000, reason="matrix", officer=w.officers[PAYMENTS_OFFICER]
    )
    statement = StatementImport.objects.create(
        checksum="0" * 64, filename="m.xml", message_id="M", kind="camt.053"
    )
    line = StatementLine.objects.create(
        statement=statement, collection_account=account, account=account.account_number,
        bank_reference="FT-MATRIX-2", booked_on=timezone.localdate(), amount_minor=7000, currency="VND",
        remittance="UNG HO", status=StatementLine.Status.UNMATCHED,
    )  # fmt: skip
    [proposal] = payment_services.refund_propose(application_id=payment.application_id, reason="matrix")
    return {"payment": payment, "refund": refund, "line": line, "proposal": proposal}


def issue_receipt(w: World, settings: Any, directory: Any) -> None:
    """The signed receipt of the citizen's paid fee."""
    from civicore.credentials.services import signing_material_reset, signing_setup
    from civicore.payments import receipts

    signing_setup(directory=directory)
    settings.SIGNING_DIR = directory
    signing_material_reset()
    w.extra["receipt"] = receipts.receipt_issue(payment_id=w.extra["payment"].pk)


def exchange_objects(w: World) -> dict[str, Any]:
    """A change of the citizen's address told to a system of the agency (receipt, delivery)."""
    from civicore.exchange.models import ChangeEvent, Delivery
    from civicore.exchange.tests.factories import change, make_subscriber

    make_subscriber("https://agency.example/hook", agency=w.agency)
    change(w.persons[CITIZEN], ["address"])
    event = ChangeEvent.objects.latest("id")
    return {"event_uuid": event.uuid, "delivery_id": Delivery.objects.filter(event=event).first().pk}


def consent_of_citizen(w: World) -> Any:
    from civicore.consent.models import Consent

    return Consent.objects.create(
        person=w.persons[CITIZEN],
        application=w.system,
        items=["full_name"],
        purpose="matrix",
        purpose_name_vi="Kiểm thử",
        expires_at=timezone.now() + dt.timedelta(days=1),
    )


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    method: str
    route: str
    allowed: frozenset[str]
    params: Callable[[World], dict[str, Any]] | None = None
    data: Callable[[World], dict[str, Any]] | None = None
    body: Callable[[World], Any] | None = None  # JSON, for the API
    content_type: str = "application/json"  # of `body`
    path: Callable[[World], str] | None = None  # when the route cannot be filled in (regex routes)
    label: str = ""
    note: str = ""
    needs: tuple[str, ...] = ()  # "result", "exchange", "consent", "routing"

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.route)

    @property
    def is_api(self) -> bool:
        return self.route.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.route}" + (f" [{self.label}]" if self.label else "")


def _app(w: World) -> dict[str, Any]:
    return {"public_id": w.application.public_id}


def _org_app(w: World) -> dict[str, Any]:
    return {"public_id": w.org_application.public_id}


def _api_app(w: World) -> dict[str, Any]:
    return {"application_id": w.application.public_id}


def _api_org_app(w: World) -> dict[str, Any]:
    return {"application_id": w.org_application.public_id}


def _reg(w: World, **more: Any) -> dict[str, Any]:
    return {"registration_number": w.organisation.registration_number, **more}


def _upload(w: World) -> dict[str, Any]:
    return {"requirement": "birth-certificate", "file": pdf_upload()}


def _sensor_device(w: World) -> Any:
    """A provisioned device of `agency` (its token is nobody's role)."""
    if "sensor_device" not in w.extra:
        from civicore.sensors.tests.factories import make_provisioned_device, soil_moisture_type

        w.extra["sensor_device"] = make_provisioned_device(soil_moisture_type(agency=w.agency))[0]
    return w.extra["sensor_device"]


SENSOR_WATCHERS = only(SENSOR_OPERATOR, SENSOR_ENGINEER)  # sensor.operate in `agency`
SENSOR_LISTS = SENSOR_WATCHERS | {OTHER_AGENCY}  # lists: each sees their own agency's


def _sensor_alarm(w: World) -> Any:
    """An active alarm on the sensor device."""
    if "sensor_alarm" not in w.extra:
        from civicore.sensors.models import Alarm

        w.extra["sensor_alarm"] = Alarm.objects.create(
            device=_sensor_device(w), agency=w.agency, message="Đất khô"
        )
    return w.extra["sensor_alarm"]


def _sensor_rule(w: World) -> Any:
    """A rule of `agency` on the sensor device's type."""
    if "sensor_rule" not in w.extra:
        from civicore.sensors.rules import rule_save

        definition = {
            "target": {"device_type": _sensor_device(w).device_type.code},
            "when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 20}},
            "on_fire": [{"alarm": {"message": "Đất khô"}}],
        }
        version = rule_save(
            rule_or_none=None, agency=w.agency, code="dry", name="Đất khô", definition=definition
        )
        w.extra["sensor_rule"] = version.rule
    return w.extra["sensor_rule"]


def _sensor_registration(w: World) -> dict[str, Any]:
    return {
        "device_id": "matrix-new-device",
        "name": "Thiết bị mới",
        "device_type": _sensor_device(w).device_type.code,
        "latitude": "21.03",
        "longitude": "105.85",
    }


ROWS: list[Row] = [
    # --- public --------------------------------------------------------------------------------
    Row("GET", "", EVERYONE),
    Row("GET", "healthz", EVERYONE),
    Row("GET", ".well-known/jwks.json", EVERYONE),
    Row("GET", ".well-known/openid-configuration", EVERYONE),
    Row("GET", "api/v1/openapi.json", EVERYONE),
    Row("GET", "api/v1/docs", EVERYONE),
    Row("GET", "api/v1/", NOBODY, note="ninja's root has no page: 404 for all"),
    Row("POST", "i18n/setlang/", EVERYONE, data=lambda w: {"language": "en", "next": "/"}),
    Row("GET", "services/", EVERYONE),
    Row(
        "GET",
        "services/procedures/<str:code>/",
        NOBODY,
        params=lambda w: {"code": "no-such"},
        note="public page; no procedure in the world, so 404 for all",
    ),
    Row("GET", "services/<slug:code>/", EVERYONE, params=lambda w: {"code": w.service.code}),
    Row("GET", "verify/", EVERYONE),
    Row(
        "GET",
        "verify/<uuid:serial>/",
        EVERYONE,
        params=lambda w: {"serial": uuid.uuid4()},
        note="public: an unknown serial is a page saying so",
    ),
    # --- Open311 GeoReport v2 (API key for POST) and the public map ---------------------------------
    Row("GET", "open311/v2/services.<str:fmt>", EVERYONE, params=lambda w: {"fmt": "json"}),
    Row(
        "GET",
        "open311/v2/services/<str:code>.<str:fmt>",
        NOBODY,
        params=lambda w: {"code": "no-such", "fmt": "xml"},
        note="public; no report category in the world, so 404 for all",
    ),
    Row("GET", "open311/v2/requests.<str:fmt>", EVERYONE, params=lambda w: {"fmt": "json"}),
    Row(
        "POST",
        "open311/v2/requests.<str:fmt>",
        NOBODY,
        params=lambda w: {"fmt": "json"},
        data=lambda w: {"description": "A broken streetlight", "lat": "21.0", "long": "105.8"},
        note="an Open311 client's api_key only: 403 without one, whoever is signed in",
    ),
    Row(
        "GET",
        "open311/v2/requests/<str:request_id>.<str:fmt>",
        NOBODY,
        params=lambda w: {"request_id": "PA-AAAAAA", "fmt": "json"},
        note="public; no such report, so 404 for all",
    ),
    Row("GET", "reports/map/", EVERYONE),
    Row("GET", "reports/map.geojson", EVERYONE),
    Row(
        "GET",
        "reports/photos/<uuid:public_id>/",
        NOBODY,
        params=lambda w: {"public_id": uuid.uuid4()},
        note="published photos only, to anyone; none in the world, so 404 for all",
    ),
    # --- accounts (django-allauth) --------------------------------------------------------------
    Row("GET", "accounts/login/", EVERYONE),
    Row("POST", "accounts/logout/", EVERYONE),
    Row("GET", "accounts/inactive/", EVERYONE),
    Row("GET", "accounts/signup/", EVERYONE),
    Row("GET", "accounts/reauthenticate/", SIGNED_IN),
    Row("GET", "accounts/reauthenticate/code/", SIGNED_IN),
    Row("GET", "accounts/reauthenticate/code/confirm/", SIGNED_IN),
    Row("GET", "accounts/email/", SIGNED_IN),
    Row("GET", "accounts/confirm-email/", EVERYONE),
    Row("GET", "accounts/password/change/", SIGNED_IN),
    Row("GET", "accounts/password/set/", SIGNED_IN),
    Row("GET", "accounts/password/reset/", EVERYONE),
    Row("GET", "accounts/login/code/confirm/", SIGNED_IN, note="outside a login by code, sends to login"),
    Row(
        "GET",
        "accounts/^confirm-email/(?P<key>[-:\\w]+)/$",
        EVERYONE,
        path=lambda w: "/accounts/confirm-email/not-a-key/",
        note="a bad key is a page saying so",
    ),
    Row("GET", "accounts/password/reset/key/done/", EVERYONE),
    Row(
        "GET",
        "accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        EVERYONE,
        path=lambda w: "/accounts/password/reset/key/1-not-a-key/",
    ),
    Row("GET", "accounts/password/reset/done/", EVERYONE),
    Row("GET", "accounts/2fa/", SIGNED_IN),
    Row("GET", "accounts/2fa/authenticate/", SIGNED_IN, note="outside a login in progress, sends to login"),
    Row("GET", "accounts/2fa/reauthenticate/", SIGNED_IN),
    Row("GET", "accounts/2fa/totp/activate/", SIGNED_IN),
    Row("GET", "accounts/2fa/totp/deactivate/", SIGNED_IN),
    Row("GET", "accounts/2fa/recovery-codes/", SIGNED_IN),
    Row("GET", "accounts/2fa/recovery-codes/generate/", SIGNED_IN),
    Row("GET", "accounts/2fa/recovery-codes/download/", SIGNED_IN),
    Row("GET", "accounts/2fa/webauthn/", SIGNED_IN),
    Row("GET", "accounts/2fa/webauthn/add/", SIGNED_IN),
    Row("GET", "accounts/2fa/webauthn/reauthenticate/", SIGNED_IN),
    Row(
        "GET",
        "accounts/2fa/webauthn/keys/<int:pk>/remove/",
        SIGNED_IN,
        params=lambda w: {"pk": 999999},
        note="asks to re-authenticate first; someone else's key is then 404 (allauth)",
    ),
    Row(
        "GET",
        "accounts/2fa/webauthn/keys/<int:pk>/edit/",
        SIGNED_IN,
        params=lambda w: {"pk": 999999},
        note="as remove",
    ),
    Row(
        "GET",
        "accounts/2fa/webauthn/login/",
        SIGNED_IN,
        note="a POST of the passkey login; GET sends to login",
    ),
    Row("GET", "accounts/sessions/", SIGNED_IN),
    # --- the citizen's own applications ----------------------------------------------------------
    Row("GET", "applications/", PEOPLE, note="acting for a business, sends to the business's list"),
    Row(
        "POST",
        "applications/start/<slug:code>/",
        only(CITIZEN, BUSINESS_FILE),
        params=lambda w: {"code": w.service.code},
        note="for a business: a current `file` grant",
    ),
    Row("GET", "applications/<uuid:public_id>/", only(CITIZEN), params=_app, label="own"),
    Row(
        "GET",
        "applications/<uuid:public_id>/",
        only(BUSINESS_FILE, BUSINESS_VIEW),
        params=_org_app,
        label="business's",
    ),
    Row("GET", "applications/<uuid:public_id>/receipt/", only(CITIZEN), params=_app, label="own"),
    Row(
        "GET",
        "applications/<uuid:public_id>/receipt/",
        only(BUSINESS_FILE, BUSINESS_VIEW),
        params=_org_app,
        label="business's",
    ),
    Row(
        "POST",
        "applications/<uuid:public_id>/documents/",
        only(CITIZEN),
        params=_app,
        data=_upload,
        label="own",
    ),
    Row(
        "POST",
        "applications/<uuid:public_id>/documents/",
        only(BUSINESS_FILE),
        params=_org_app,
        data=_upload,
        label="business's",
        note="changing needs `file`",
    ),
    Row(
        "POST",
        "applications/<uuid:public_id>/documents/<uuid:document_id>/delete/",
        only(CITIZEN),
        params=lambda w: {**_app(w), "document_id": w.document.public_id},
        label="own",
    ),
    Row(
        "POST",
        "applications/<uuid:public_id>/documents/<uuid:document_id>/delete/",
        only(BUSINESS_FILE),
        params=lambda w: {**_org_app(w), "document_id": w.org_document.public_id},
        label="business's",
    ),
    Row(
        "POST",
        "applications/<uuid:public_id>/respond/",
        only(CITIZEN),
        params=_app,
        data=lambda w: {"message": "x"},
        label="own",
    ),
    Row(
        "POST",
        "applications/<uuid:public_id>/respond/",
        only(BUSINESS_FILE),
        params=_org_app,
        data=lambda w: {"message": "x"},
        label="business's",
    ),
    Row(
        "GET",
        "applications/documents/<uuid:document_id>/",
        only(CITIZEN),
        params=lambda w: {"document_id": w.document.public_id},
        label="own",
    ),
    Row(
        "GET",
        "applications/documents/<uuid:document_id>/",
        only(BUSINESS_FILE, BUSINESS_VIEW),
        params=lambda w: {"document_id": w.org_document.public_id},
        label="business's",
    ),
    Row(
        "GET",
        "results/<uuid:public_id>/",
        only(CITIZEN, CASEWORKER, DECIDER),
        params=_app,
        needs=("result",),
    ),
    # --- verifiable credentials: the wallet, shared links, officers' status changes ------------------
    Row("GET", "my-documents/", SIGNED_IN, note="each sees only their own (officers: none)"),
    Row(
        "GET",
        "my-documents/<uuid:public_id>/",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["credential"].public_id},
        needs=("credential",),
    ),
    Row(
        "POST",
        "my-documents/<uuid:public_id>/",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["credential"].public_id},
        data=lambda w: {"claim": ["reference"], "audience": "Bank", "lifetime": "1h"},
        needs=("credential",),
    ),
    Row(
        "GET",
        "my-documents/<uuid:public_id>/credential.sd-jwt",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["credential"].public_id},
        needs=("credential",),
    ),
    Row(
        "POST",
        "my-documents/shared/<str:public_id>/withdraw",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["presentation"].public_id},
        needs=("credential",),
    ),
    Row(
        "GET",
        "shared/<str:public_id>/",
        EVERYONE,
        params=lambda w: {"public_id": w.extra["presentation"].public_id},
        needs=("credential",),
        note="public: whoever holds the link (the holder sees each check)",
    ),
    Row(
        "GET",
        "shared/<str:public_id>/presentation.sd-jwt",
        EVERYONE,
        params=lambda w: {"public_id": w.extra["presentation"].public_id},
        needs=("credential",),
    ),
    Row(
        "GET",
        "office/documents/<uuid:public_id>/",
        CASE_OFFICERS,
        params=lambda w: {"public_id": w.extra["credential"].public_id},
        needs=("credential",),
    ),
    Row(
        "POST",
        "office/documents/<uuid:public_id>/status",
        NOBODY,
        params=lambda w: {"public_id": w.extra["credential"].public_id},
        data=lambda w: {"action": "suspend", "reason": "Checking"},
        needs=("credential",),
        note="result.issue in the document's agency: no role of the world holds it there",
    ),
    # --- businesses --------------------------------------------------------------------------------
    Row("GET", "business/", PEOPLE),
    Row("POST", "business/act-for/", PEOPLE, data=lambda w: {"organisation": ""}, label="myself"),
    Row(
        "POST",
        "business/register/",
        PEOPLE,
        data=lambda w: {"registration_number": "0300000000"},
        note="refused by the registry: a message on the page",
    ),
    Row("GET", "business/applications/", PEOPLE, note="not acting for a business: sent to /business/"),
    Row(
        "POST",
        "business/invitations/<int:membership_id>/",
        only(CITIZEN),
        params=lambda w: {"membership_id": w.invitation.pk},
        data=lambda w: {"action": "accept"},
    ),
    Row("GET", "business/<str:registration_number>/members/", only(BUSINESS_ADMIN), params=_reg),
    Row(
        "POST",
        "business/<str:registration_number>/members/invite/",
        only(BUSINESS_ADMIN),
        params=_reg,
        data=lambda w: {"national_id": "079000000000"},
    ),
    Row(
        "POST",
        "business/<str:registration_number>/members/<int:membership_id>/",
        only(BUSINESS_ADMIN),
        params=lambda w: _reg(w, membership_id=w.view_membership.pk),
        data=lambda w: {"action": "make_admin"},
    ),
    Row(
        "POST",
        "business/<str:registration_number>/grants/",
        only(BUSINESS_ADMIN),
        params=_reg,
        data=lambda w: {
            "membership": w.view_membership.pk,
            "permission": "pay",
            "service": "",
            "expires_on": (timezone.localdate() + dt.timedelta(days=10)).isoformat(),
        },
    ),
    Row(
        "POST",
        "business/<str:registration_number>/grants/<int:grant_id>/revoke/",
        only(BUSINESS_ADMIN),
        params=lambda w: _reg(w, grant_id=w.file_grant.pk),
    ),
    # --- the citizen's data -----------------------------------------------------------------------
    Row("GET", "my-profile/", SIGNED_IN, note="officers have no citizen identity: an empty profile"),
    Row(
        "POST",
        "my-profile/<slug:key>/",
        PEOPLE,
        params=lambda w: {"key": "email"},
        data=lambda w: {"value": "not an e-mail"},
    ),
    Row("GET", "my-profile/sessions/", SIGNED_IN),
    Row("POST", "my-profile/sessions/end-others/", SIGNED_IN),
    Row(
        "POST",
        "my-profile/sessions/<int:session_id>/end/",
        NOBODY,
        params=lambda w: {"session_id": 999999},
        note="someone's session: 404 for anyone else",
    ),
    Row("GET", "my-data/", SIGNED_IN, note="officers have no citizen identity: nothing to list"),
    Row("GET", "my-data/export.csv", SIGNED_IN, note="as my-data/"),
    Row("GET", "my-data/consents/", SIGNED_IN, note="as my-data/"),
    Row(
        "POST",
        "my-data/consents/<uuid:public_id>/revoke",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["consent"].public_id},
        needs=("consent",),
    ),
    Row("GET", "my-data/changes/", SIGNED_IN, note="as my-data/"),
    Row(
        "GET",
        "my-data/changes/<uuid:event_uuid>/",
        only(CITIZEN),
        params=lambda w: {"event_uuid": w.extra["event_uuid"]},
        needs=("exchange",),
    ),
    Row("GET", "inbox/", SIGNED_IN),
    Row(
        "POST",
        "inbox/<int:notification_id>/read",
        only(CITIZEN),
        params=lambda w: {"notification_id": w.persons[CITIZEN].user.notifications.first().pk},
    ),
    # --- OAuth / OpenID Connect (agency systems) ---------------------------------------------------
    Row("GET", "oauth/authorize", PEOPLE, note="citizens consent; without a client an error page (400)"),
    Row(
        "POST",
        "oauth/token",
        NOBODY,
        note="client authentication (private_key_jwt) only",
        data=lambda w: {"grant_type": "authorization_code", "code": "x", "client_id": w.system.client_id},
    ),
    Row("POST", "oauth/par", NOBODY),
    Row("GET", "oauth/userinfo", NOBODY, note="access token only"),
    Row("POST", "oauth/revoke", NOBODY),
    Row("GET", "oauth/logout", EVERYONE),
    # --- problem reports ----------------------------------------------------------------------------
    Row("GET", "report/", EVERYONE),
    Row(
        "POST",
        "report/",
        EVERYONE,
        data=lambda w: {"description": "Ổ gà lớn giữa đường", "latitude": "21.03", "longitude": "105.85"},
        note="anyone may report, signed in or not",
    ),
    Row(
        "GET",
        "report/nearby/",
        EVERYONE,
        path=lambda w: "/report/nearby/?latitude=21.0285&longitude=105.8542",
    ),
    Row(
        "GET",
        "report/<str:reference>/",
        EVERYONE,
        params=_report,
        note="the public part for anyone with the reference",
    ),
    Row(
        "POST",
        "report/<str:reference>/me-too/",
        EVERYONE,
        params=_report,
        note="the reporter is told they filed it themselves",
    ),
    Row(
        "POST",
        "report/<str:reference>/human-review/",
        only(CITIZEN),
        params=_report,
        note="the reporter only",
    ),
    Row(
        "POST",
        "report/<str:reference>/rate/",
        only(CITIZEN),
        params=_report,
        data=lambda w: {"resolved": "yes", "stars": "5"},
        note="the reporter only (not resolved yet: a message)",
    ),
    Row(
        "GET",
        "report/<str:reference>/photos/<uuid:photo_id>/",
        only(CITIZEN),
        params=lambda w: _report(w, photo_id=w.extra["report_photo"].public_id),
        note="not published: the reporter only",
    ),
    Row("GET", "my-reports/", SIGNED_IN),
    Row(
        "GET",
        "office/reports/",
        only(REPORT_HANDLER, REPORT_TRIAGER, OTHER_AGENCY),
        note="report.handle; each sees their own agency's",
    ),
    Row("GET", "office/reports/triage/", only(REPORT_TRIAGER)),
    Row(
        "GET",
        "office/reports/<int:report_id>/",
        only(REPORT_HANDLER, REPORT_TRIAGER),
        params=_office_report,
        note="report.handle in the report's agency, or report.triage",
    ),
    Row(
        "GET",
        "office/reports/<int:report_id>/photos/<uuid:photo_id>/",
        only(REPORT_HANDLER, REPORT_TRIAGER),
        params=lambda w: _office_report(w, photo_id=w.extra["report_photo"].public_id),
    ),
    Row(
        "POST",
        "office/reports/<int:report_id>/<slug:action>/",
        only(REPORT_HANDLER),
        params=lambda w: _office_report(w, action="start"),
        note="work on the report: its agency's handlers only",
    ),
    # --- city sensors: back office for sensor.operate / sensor.manage, one public page --------------
    Row("GET", "environment/", EVERYONE, note="aggregates only, no login"),
    # --- payments: gateways call in, authenticated by their signature alone --------------------
    Row(
        "GET",
        "payments/gateways/<slug:code>/callback/",
        EVERYONE,
        params=lambda w: {"code": "vnpay"},
        note="the gateway's signature is the only credential: unsigned, every caller gets RspCode 97",
    ),
    # --- payments: the payer's pages ------------------------------------------------------------
    Row(
        "GET",
        "payments/pay/<uuid:application_id>/",
        only(CITIZEN),
        params=lambda w: {"application_id": w.application.public_id},
        label="own",
        note="no fee: a redirect to the application",
    ),
    Row(
        "GET",
        "payments/pay/<uuid:application_id>/",
        only(BUSINESS_FILE, BUSINESS_VIEW),
        params=lambda w: {"application_id": w.org_application.public_id},
        label="business's",
        note="seeing the fee needs a view grant; paying it, the pay grant (checked by the service)",
    ),
    Row(
        "POST",
        "payments/pay/<uuid:application_id>/",
        only(CITIZEN),
        params=lambda w: {"application_id": w.application.public_id},
        data=lambda w: {"method": "vietqr"},
        label="own",
    ),
    Row(
        "GET",
        "payments/<uuid:public_id>/",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["payment"].public_id},
        needs=("payment",),
        note="the payer only; anyone else's is 404",
    ),
    Row(
        "GET",
        "payments/<uuid:public_id>/return/",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["payment"].public_id},
        needs=("payment",),
        note="unsigned parameters only tell the payer what is known",
    ),
    Row(
        "GET",
        "payments/<uuid:public_id>/receipt.pdf",
        only(CITIZEN),
        params=lambda w: {"public_id": w.extra["receipt"].payment.public_id},
        needs=("receipt",),
        note="the payer only; anyone else's is 404",
    ),
    # --- payments: the back office (payment.view; refunds, statements and the queue payment.refund)
    Row("GET", "office/payments/", PAY_VIEW | {OTHER_AGENCY}, note="own agency's payments"),
    Row("GET", "office/payments/export.csv", PAY_VIEW | {OTHER_AGENCY}, note="own agency's payments"),
    Row("GET", "office/payments/reconciliation/", PAY_VIEW | {OTHER_AGENCY}, note="own agency's queue"),
    Row("GET", "office/payments/statements/", PAY_VIEW | {OTHER_AGENCY}, note="own agency's imports"),
    Row("GET", "office/payments/proposals/", PAY_VIEW | {OTHER_AGENCY}, note="own agency's proposals"),
    Row(
        "POST",
        "office/payments/proposals/<int:refund_id>/decide/",
        only(PAYMENTS_OFFICER),
        params=lambda w: {"refund_id": w.extra["proposal"].pk},
        data=lambda w: {"action": "decline", "reason": "matrix"},
        needs=("payment",),
        note="payment.refund; another agency's proposal is 404",
    ),
    Row("GET", "office/payments/report/", PAY_VIEW | {OTHER_AGENCY}, note="own agency's report"),
    Row(
        "GET",
        "office/payments/report/",
        PAY_VIEW,
        path=lambda w: f"/office/payments/report/?agency={w.agency.pk}",
        label="agency=",
        note="naming `agency` lets only its officers through",
    ),
    Row("GET", "office/payments/report.csv", PAY_VIEW | {OTHER_AGENCY}, note="own agency's report"),
    Row(
        "GET",
        "office/payments/report.csv",
        PAY_VIEW,
        path=lambda w: f"/office/payments/report.csv?agency={w.agency.pk}",
        label="agency=",
        note="naming `agency` lets only its officers through",
    ),
    Row(
        "POST",
        "office/payments/statements/",
        only(PAYMENTS_OFFICER, OTHER_AGENCY),
        data=lambda w: {},
        note="payment.refund; no file is a form error (422)",
    ),
    Row(
        "GET",
        "office/payments/<uuid:public_id>/",
        PAY_VIEW,
        params=lambda w: {"public_id": w.extra["payment"].public_id},
        needs=("payment",),
    ),
    Row(
        "POST",
        "office/payments/<uuid:public_id>/refund/",
        only(PAYMENTS_OFFICER),
        params=lambda w: {"public_id": w.extra["payment"].public_id},
        data=lambda w: {"amount": "1000", "reason": "matrix"},
        needs=("payment",),
    ),
    Row(
        "POST",
        "office/payments/<uuid:public_id>/refunds/<str:reference>/confirm/",
        only(PAYMENTS_OFFICER),
        params=lambda w: {
            "public_id": w.extra["payment"].public_id,
            "reference": w.extra["refund"].reference,
        },
        needs=("payment",),
    ),
    Row(
        "POST",
        "office/payments/reconciliation/<int:line_id>/resolve/",
        only(PAYMENTS_OFFICER),
        params=lambda w: {"line_id": w.extra["line"].pk},
        data=lambda w: {"action": "note", "note": "matrix"},
        needs=("payment",),
    ),
    Row("GET", "office/sensors/", SENSOR_LISTS),
    Row("GET", "office/sensors/add/device/", only(SENSOR_ENGINEER, OTHER_AGENCY), note="sensor.manage"),
    Row(
        "POST",
        "office/sensors/add/device/",
        only(SENSOR_ENGINEER, OTHER_AGENCY),
        data=_sensor_registration,
        note="sensor.manage; another agency's device type is a form error (422)",
    ),
    Row("GET", "office/sensors/add/device-type/", only(SENSOR_ENGINEER, OTHER_AGENCY)),
    Row(
        "POST",
        "office/sensors/add/device-type/",
        only(SENSOR_ENGINEER, OTHER_AGENCY),
        data=lambda w: {"code": "matrix-type", "name_vi": "Loại", "role": "sensor", "quantities": "[]"},
        note="sensor.manage; no quantities is a form error (422)",
    ),
    Row("GET", "office/sensors/add/rule/", only(SENSOR_ENGINEER, OTHER_AGENCY)),
    Row(
        "POST",
        "office/sensors/add/rule/",
        only(SENSOR_ENGINEER, OTHER_AGENCY),
        data=lambda w: {"code": "matrix-rule", "name": "R", "definition": "{}"},
        note="sensor.manage; an empty definition is a form error (422)",
    ),
    Row(
        "GET",
        "office/sensors/devices/<slug:device_id>/",
        SENSOR_WATCHERS,
        params=lambda w: {"device_id": _sensor_device(w).device_id},
    ),
    Row(
        "GET",
        "office/sensors/devices/<slug:device_id>/charts/",
        SENSOR_WATCHERS,
        params=lambda w: {"device_id": _sensor_device(w).device_id},
    ),
    Row(
        "POST",
        "office/sensors/devices/<slug:device_id>/command/",
        SENSOR_WATCHERS,
        params=lambda w: {"device_id": _sensor_device(w).device_id},
        data=lambda w: {"name": "open", "params": "{}"},
        note="sensor.operate; a sensor takes no commands, a form error (422)",
    ),
    Row(
        "POST",
        "office/sensors/devices/<slug:device_id>/credentials/<slug:action>/",
        only(SENSOR_ENGINEER),
        params=lambda w: {"device_id": _sensor_device(w).device_id, "action": "rotate"},
        note="sensor.manage in the device's agency",
    ),
    Row("GET", "office/sensors/alarms/", SENSOR_LISTS),
    Row(
        "POST",
        "office/sensors/alarms/<int:alarm_id>/<slug:action>/",
        SENSOR_WATCHERS,
        params=lambda w: {"alarm_id": _sensor_alarm(w).pk, "action": "acknowledge"},
        data=lambda w: {"note": "Đã xem"},
    ),
    Row("GET", "office/sensors/commands/", SENSOR_LISTS),
    Row("GET", "office/sensors/rejections/", SENSOR_LISTS),
    Row("GET", "office/sensors/rules/", SENSOR_LISTS),
    Row(
        "GET",
        "office/sensors/rules/<slug:code>/",
        SENSOR_WATCHERS,
        params=lambda w: {"code": _sensor_rule(w).code},
    ),
    Row(
        "GET",
        "office/sensors/rules/<slug:code>/edit/",
        only(SENSOR_ENGINEER),
        params=lambda w: {"code": _sensor_rule(w).code},
    ),
    Row(
        "POST",
        "office/sensors/rules/<slug:code>/edit/",
        only(SENSOR_ENGINEER),
        params=lambda w: {"code": _sensor_rule(w).code},
        data=lambda w: {"name": "R", "definition": "[]"},
        note="sensor.manage in the rule's agency; a bad definition is a form error (422)",
    ),
    Row(
        "POST",
        "office/sensors/rules/<slug:code>/<slug:action>/",
        only(SENSOR_ENGINEER),
        params=lambda w: {"code": _sensor_rule(w).code, "action": "disable"},
    ),
    # --- back office: cases ------------------------------------------------------------------------
    Row("GET", "office/", CASE_OFFICERS | {OTHER_AGENCY}, note="case.view; each sees their own agency's"),
    Row("GET", "office/cases/<int:case_id>/", CASE_OFFICERS, params=lambda w: {"case_id": w.case.pk}),
    Row(
        "GET",
        "office/cases/<int:case_id>/documents/<uuid:document_id>/",
        CASE_OFFICERS,
        params=lambda w: {"case_id": w.case.pk, "document_id": w.document.public_id},
    ),
    Row(
        "POST",
        "office/cases/<int:case_id>/<slug:action>/",
        CASE_OFFICERS,
        params=lambda w: {"case_id": w.case.pk, "action": "claim"},
    ),
    # --- AI routing models: public cards, back office for ai.manage (held by other_agency) ---------
    Row("GET", "ai/models/", EVERYONE),
    Row(
        "GET",
        "ai/models/<str:version>/",
        EVERYONE,
        params=lambda w: {"version": w.extra["routing_model"].version},
        needs=("routing",),
    ),
    Row("GET", "office/routing/", only(OTHER_AGENCY), note="ai.manage: the registry is platform-wide"),
    Row(
        "GET",
        "office/routing/<int:model_id>/",
        only(OTHER_AGENCY),
        params=lambda w: {"model_id": w.extra["routing_model"].pk},
        needs=("routing",),
    ),
    Row(
        "POST",
        "office/routing/<int:model_id>/activate/",
        only(OTHER_AGENCY),
        params=lambda w: {"model_id": w.extra["routing_model"].pk},
        needs=("routing",),
        note="ai.manage; refused labels come back as a message on the model's page (302)",
    ),
    # --- back office: officers, systems, deliveries ------------------------------------------------
    Row("GET", "office/officers/", SYSTEMS, note="agency.admin, own agency's officers"),
    Row("GET", "office/verify-identity/", only(OTHER_AGENCY), note="identity.verify, any agency"),
    Row(
        "POST",
        "office/verify-identity/",
        only(OTHER_AGENCY),
        data=lambda w: {"national_id": "079000000000", "full_name": "Nobody", "checked_in_person": "on"},
        note="identity.verify; an unknown number changes nothing",
    ),
    Row("POST", "office/officers/add/", SYSTEMS, data=lambda w: {"email": "nobody@example.test"}),
    Row("POST", "office/officers/teams/add/", SYSTEMS, data=lambda w: {"name": "Một cửa"}),
    Row(
        "POST",
        "office/officers/<int:officer_id>/roles/",
        only(AGENCY_ADMIN),
        params=lambda w: {"officer_id": w.officers[CASEWORKER].pk},
        data=lambda w: {"action": "grant", "role": "issuer"},
    ),
    Row(
        "POST",
        "office/officers/<int:officer_id>/team/",
        only(AGENCY_ADMIN),
        params=lambda w: {"officer_id": w.officers[CASEWORKER].pk},
        data=lambda w: {"team": ""},
    ),
    Row(
        "POST",
        "office/officers/<int:officer_id>/deactivate/",
        only(AGENCY_ADMIN),
        params=lambda w: {"officer_id": w.officers[CASEWORKER].pk},
    ),
    Row("GET", "office/systems/", SYSTEMS, note="systems.manage"),
    Row("GET", "office/systems/new/", SYSTEMS),
    Row(
        "GET",
        "office/systems/<slug:client_id>/",
        only(AGENCY_ADMIN),
        params=lambda w: {"client_id": w.system.client_id},
    ),
    Row("GET", "office/deliveries/", SYSTEMS, note="systems.manage, own agency's deliveries"),
    Row("POST", "office/deliveries/replay-dead/", SYSTEMS),
    Row(
        "GET",
        "office/deliveries/<int:delivery_id>/",
        only(AGENCY_ADMIN),
        params=lambda w: {"delivery_id": w.extra["delivery_id"]},
        needs=("exchange",),
    ),
    Row(
        "POST",
        "office/deliveries/<int:delivery_id>/replay/",
        only(AGENCY_ADMIN),
        params=lambda w: {"delivery_id": w.extra["delivery_id"]},
        needs=("exchange",),
    ),
    # --- API: payments ------------------------------------------------------------------------------
    Row(
        "POST",
        "/api/v1/payments",
        only(CITIZEN),
        body=lambda w: {"application_id": str(w.application.public_id), "method": "vietqr"},
        label="own",
        note="no fee: 409 nothing_to_pay",
    ),
    Row(
        "POST",
        "/api/v1/payments",
        NOBODY,
        body=lambda w: {"application_id": str(w.org_application.public_id), "method": "vietqr"},
        label="business's",
        note="the pay grant only; no role of the matrix holds it",
    ),
    Row(
        "GET",
        "/api/v1/payments",
        only(CITIZEN),
        path=lambda w: f"/api/v1/payments?application_id={w.application.public_id}",
        label="own",
    ),
    Row(
        "GET",
        "/api/v1/payments",
        only(BUSINESS_FILE, BUSINESS_VIEW),
        path=lambda w: f"/api/v1/payments?application_id={w.org_application.public_id}",
        label="business's",
    ),
    Row(
        "GET",
        "/api/v1/payments/{payment_id}",
        only(CITIZEN) | PAY_VIEW,
        params=lambda w: {"payment_id": w.extra["payment"].public_id},
        needs=("payment",),
        note="the payer, or the agency's officers holding payment.view",
    ),
    Row(
        "GET",
        "/api/v1/payments/{payment_id}/refunds",
        only(CITIZEN) | PAY_VIEW,
        params=lambda w: {"payment_id": w.extra["payment"].public_id},
        needs=("payment",),
    ),
    Row(
        "POST",
        "/api/v1/payments/{payment_id}/refunds",
        only(PAYMENTS_OFFICER),
        params=lambda w: {"payment_id": w.extra["payment"].public_id},
        body=lambda w: {"amount_minor": 1000, "reason": "matrix"},
        needs=("payment",),
        note="payment.refund of the payment's agency only",
    ),
    # --- API: catalogue (public) -------------------------------------------------------------------
    Row("GET", "/api/v1/catalogue/services", EVERYONE),
    Row("GET", "/api/v1/catalogue/services/{code}", EVERYONE, params=lambda w: {"code": w.service.code}),
    Row("GET", "/api/v1/catalogue/procedures", EVERYONE),
    Row("GET", "/api/v1/catalogue/procedures/{code}", NOBODY, params=lambda w: {"code": "no-such"}),
    # --- API: applications (X-Acting-For for the business roles) -----------------------------------
    Row(
        "POST",
        "/api/v1/applications",
        only(CITIZEN, BUSINESS_FILE),
        body=lambda w: {"service": w.service.code, "answers": {}},
        note="for a business: `file` grant",
    ),
    Row("GET", "/api/v1/applications", PEOPLE, note="a business's list holds what the grants cover"),
    Row("GET", "/api/v1/applications/{application_id}", only(CITIZEN), params=_api_app, label="own"),
    Row(
        "GET",
        "/api/v1/applications/{application_id}",
        only(BUSINESS_FILE, BUSINESS_VIEW),
        params=_api_org_app,
        label="business's",
    ),
    Row(
        "PATCH",
        "/api/v1/applications/{application_id}",
        only(CITIZEN),
        params=_api_app,
        body=lambda w: {"answers": {}},
        label="own",
        note="409: already submitted",
    ),
    Row(
        "PATCH",
        "/api/v1/applications/{application_id}",
        only(BUSINESS_FILE),
        params=_api_org_app,
        body=lambda w: {"answers": {}},
        label="business's",
    ),
    Row(
        "POST",
        "/api/v1/applications/{application_id}/documents",
        only(CITIZEN),
        params=_api_app,
        data=_upload,
        label="own",
    ),
    Row(
        "POST",
        "/api/v1/applications/{application_id}/documents",
        only(BUSINESS_FILE),
        params=_api_org_app,
        data=_upload,
        label="business's",
    ),
    Row(
        "POST",
        "/api/v1/applications/{application_id}/submit",
        only(CITIZEN),
        params=_api_app,
        body=lambda w: {},
        label="own",
    ),
    Row(
        "POST",
        "/api/v1/applications/{application_id}/submit",
        only(BUSINESS_FILE),
        params=_api_org_app,
        body=lambda w: {},
        label="business's",
    ),
    Row(
        "POST",
        "/api/v1/applications/{application_id}/respond",
        only(CITIZEN),
        params=_api_app,
        body=lambda w: {"message": "x"},
        label="own",
    ),
    Row(
        "POST",
        "/api/v1/applications/{application_id}/respond",
        only(BUSINESS_FILE),
        params=_api_org_app,
        body=lambda w: {"message": "x"},
        label="business's",
    ),
    # --- API: cases ----------------------------------------------------------------------------------
    Row("GET", "/api/v1/cases", CASE_OFFICERS | {OTHER_AGENCY}),
    Row("GET", "/api/v1/cases/{case_id}", CASE_OFFICERS, params=lambda w: {"case_id": w.case.pk}),
    Row(
        "POST",
        "/api/v1/cases/{case_id}/{action}",
        CASE_OFFICERS,
        params=lambda w: {"case_id": w.case.pk, "action": "claim"},
        body=lambda w: {},
    ),
    # --- API: results, notifications, agency systems ----------------------------------------------
    Row(
        "POST",
        "/api/v1/credentials/verify",
        EVERYONE,
        data=lambda w: {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
    ),
    Row("GET", "/api/v1/credentials/verify/{serial}", EVERYONE, params=lambda w: {"serial": uuid.uuid4()}),
    Row(
        "GET",
        "/api/v1/credentials/results/{application_public_id}",
        only(CITIZEN, CASEWORKER, DECIDER),
        params=lambda w: {"application_public_id": w.application.public_id},
        needs=("result",),
    ),
    # --- Open data: public pages and CKAN's read-only Action API --------------------------------------
    Row("GET", "data/", EVERYONE, note="the public open data catalogue"),
    Row("GET", "data/catalog.jsonld", EVERYONE),
    Row("GET", "data/<slug:name>/", EVERYONE, params=lambda w: {"name": "sample"}, needs=("opendata",)),
    Row("GET", "data/<slug:name>.jsonld", EVERYONE, params=lambda w: {"name": "sample"}, needs=("opendata",)),
    Row(
        "GET",
        "data/<slug:name>/<uuid:resource_id>.<str:fmt>",
        EVERYONE,
        params=lambda w: {"name": "sample", "resource_id": w.extra["resource"].id, "fmt": "csv"},
        needs=("opendata",),
    ),
    # --- Service performance (civicore.insights) ---------------------------------------------------
    Row("GET", "performance/", EVERYONE, note="the public platform scorecard"),
    Row("GET", "performance/<slug:code>/", EVERYONE, params=lambda w: {"code": w.service.code}),
    Row("GET", "office/performance/", only(OTHER_AGENCY), note="performance.view: their own agency's"),
    Row(
        "POST",
        "office/performance/offline/",
        only(OTHER_AGENCY),
        data=lambda w: {"service": w.extra["insights_service"].code, "month": "2026-01", "count": "1"},
        needs=("insights",),
    ),
    Row("GET", "/api/v1/insights/scorecard", EVERYONE, note="platform and service scopes are public"),
    Row(
        "PUT",
        "/api/v1/insights/offline-volumes",
        only(OTHER_AGENCY),
        body=lambda w: {"service": w.extra["insights_service"].code, "month": "2026-01", "count": 1},
        needs=("insights",),
    ),
    # (insights rows end)
    # --- Citizen feedback (civicore.feedback) ---------------------------------------------------------
    Row(
        "GET",
        "feedback/<slug:kind>/<uuid:public_id>/",
        only(CITIZEN),
        params=lambda w: {"kind": "application", "public_id": w.application.public_id},
        needs=("feedback",),
        note="the owner only; 404 for anyone else",
    ),
    Row(
        "POST",
        "feedback/<slug:kind>/<uuid:public_id>/",
        only(CITIZEN),
        params=lambda w: {"kind": "application", "public_id": w.application.public_id},
        data=lambda w: {"score": "5"},
        needs=("feedback",),
        note="rated already: 409 already_rated",
    ),
    Row("GET", "office/feedback/", only(OTHER_AGENCY), note="feedback.view: their own agency's ratings"),
    Row(
        "POST",
        "/api/v1/feedback/ratings",
        only(CITIZEN),
        body=lambda w: {"kind": "application", "id": str(w.application.public_id), "score": 5},
        needs=("feedback",),
        note="rated already: 409 already_rated; 404 for anyone else",
    ),
    Row(
        "GET",
        "/api/v1/feedback/ratings/{kind}/{id}",
        only(CITIZEN),
        params=lambda w: {"kind": "application", "id": w.application.public_id},
        needs=("feedback",),
    ),
    # (feedback rows end)
    # --- Consultations (civicore.consultations) ------------------------------------------------------
    Row("GET", "consultations/", EVERYONE, note="the public list"),
    Row(
        "GET",
        "consultations/<str:key>/",
        EVERYONE,
        params=lambda w: {"key": w.extra["consultation"].slug},
        needs=("consultation",),
    ),
    Row(
        "GET",
        "consultations/<str:key>/documents/<int:document_id>/",
        EVERYONE,
        params=lambda w: {
            "key": w.extra["consultation"].slug,
            "document_id": w.extra["consultation_document"].pk,
        },
        needs=("consultation",),
    ),
    Row(
        "POST",
        "consultations/<str:key>/ideas/",
        PEOPLE,
        params=lambda w: {"key": w.extra["consultation"].slug},
        data=lambda w: {"title": "Idea", "body": "Text", "display_name": "Matrix"},
        needs=("consultation",),
        note="citizens only: officers are refused, visitors sent to sign in",
    ),
    Row(
        "POST",
        "consultations/ideas/<int:idea_id>/vote/",
        PEOPLE,
        params=lambda w: {"idea_id": w.extra["consultation_idea"].pk},
        needs=("consultation",),
    ),
    Row(
        "POST",
        "consultations/ideas/<int:idea_id>/comments/",
        PEOPLE,
        params=lambda w: {"idea_id": w.extra["consultation_idea"].pk},
        data=lambda w: {"body": "Comment", "display_name": "Matrix"},
        needs=("consultation",),
    ),
    Row(
        "POST",
        "consultations/ideas/<int:idea_id>/follow/",
        PEOPLE,
        params=lambda w: {"idea_id": w.extra["consultation_idea"].pk},
        data=lambda w: {"follow": "1"},
        needs=("consultation",),
    ),
    Row("GET", "office/consultations/", only(OTHER_AGENCY), note="consultation.moderate, own agency"),
    Row("GET", "office/consultations/new/", only(OTHER_AGENCY), note="consultation.manage"),
    Row(
        "POST",
        "office/consultations/new/",
        only(OTHER_AGENCY),
        data=lambda w: {"title": "T", "question": "Q?", "opens_on": "2026-01-01", "closes_on": "2026-02-01"},
    ),
    Row(
        "GET",
        "office/consultations/<int:consultation_id>/",
        only(OTHER_AGENCY),
        params=lambda w: {"consultation_id": w.extra["consultation"].pk},
        needs=("consultation",),
        note="the consultation belongs to other_agency's agency",
    ),
    Row(
        "POST",
        "office/consultations/<int:consultation_id>/<slug:action>/",
        only(OTHER_AGENCY),
        params=lambda w: {"consultation_id": w.extra["consultation"].pk, "action": "close"},
        needs=("consultation",),
    ),
    Row(
        "GET",
        "office/consultations/<int:consultation_id>/edit/",
        only(OTHER_AGENCY),
        params=lambda w: {"consultation_id": w.extra["consultation"].pk},
        needs=("consultation",),
        note="consultation.manage, own agency",
    ),
    Row(
        "POST",
        "office/consultations/<int:consultation_id>/edit/",
        only(OTHER_AGENCY),
        params=lambda w: {"consultation_id": w.extra["consultation"].pk},
        data=lambda w: {"description": "Changed by the matrix."},
        needs=("consultation",),
    ),
    Row("GET", "/api/v1/consultations", EVERYONE),
    Row(
        "GET",
        "/api/v1/consultations/{consultation_id}/ideas",
        EVERYONE,
        params=lambda w: {"consultation_id": w.extra["consultation"].pk},
        needs=("consultation",),
    ),
    Row(
        "GET",
        "/api/v1/consultations/{consultation_id}",
        EVERYONE,
        params=lambda w: {"consultation_id": w.extra["consultation"].pk},
        needs=("consultation",),
    ),
    Row(
        "POST",
        "/api/v1/consultations/{consultation_id}/ideas",
        PEOPLE,
        params=lambda w: {"consultation_id": w.extra["consultation"].pk},
        body=lambda w: {"title": "Idea", "body": "Text", "display_name": "Matrix"},
        needs=("consultation",),
    ),
    Row(
        "POST",
        "/api/v1/consultations/ideas/{idea_id}/votes",
        PEOPLE,
        params=lambda w: {"idea_id": w.extra["consultation_idea"].pk},
        needs=("consultation",),
    ),
    Row(
        "DELETE",
        "/api/v1/consultations/ideas/{idea_id}/votes",
        PEOPLE,
        params=lambda w: {"idea_id": w.extra["consultation_idea"].pk},
        needs=("consultation",),
    ),
    Row(
        "POST",
        "/api/v1/consultations/ideas/{idea_id}/comments",
        PEOPLE,
        params=lambda w: {"idea_id": w.extra["consultation_idea"].pk},
        body=lambda w: {"body": "Comment", "display_name": "Matrix"},
        needs=("consultation",),
    ),
    # (consultations rows end)
    # --- Operations telemetry ------------------------------------------------------------------------
    Row("GET", "metrics", NOBODY, note="only a scraper with METRICS_TOKEN; unset here, so 404 for all"),
    # (telemetry rows end)
    Row("GET", "api/3", EVERYONE),
    Row("GET", "api/3/action/<str:name>", EVERYONE, params=lambda w: {"name": "package_list"}),
    Row(
        "POST",
        "api/3/action/<str:name>",
        EVERYONE,
        params=lambda w: {"name": "package_list"},
        note="read-only actions; CKAN clients POST their parameters as JSON",
    ),
    Row("GET", "api/action/<str:name>", EVERYONE, params=lambda w: {"name": "status_show"}),
    Row("POST", "api/action/<str:name>", EVERYONE, params=lambda w: {"name": "status_show"}),
    Row("GET", "transparency/", EVERYONE, note="the public log page"),
    Row("GET", "/api/v1/transparency/tree-heads", EVERYONE),
    Row(
        "GET",
        "/api/v1/transparency/entries",
        EVERYONE,
        params=lambda w: {"start": 0, "end": 1},
        needs=("transparency",),
    ),
    Row("GET", "/api/v1/transparency/tree-heads/latest", EVERYONE, needs=("transparency",)),
    Row(
        "GET",
        "/api/v1/transparency/proofs/consistency",
        EVERYONE,
        params=lambda w: {"first": 1, "second": 1},
        needs=("transparency",),
    ),
    Row(
        "GET",
        "/api/v1/transparency/proofs/inclusion",
        EVERYONE,
        params=lambda w: {"position": 0},
        needs=("transparency",),
    ),
    Row("GET", "/api/v1/vc/trust-list", EVERYONE),
    Row("GET", "/api/v1/vc/status-lists/{agency}", EVERYONE, params=lambda w: {"agency": w.agency.code}),
    Row("POST", "/api/v1/vc/verify", EVERYONE, body=lambda w: {"token": "eyJ.eyJ.x~"}),
    Row("GET", "/api/v1/vc/credentials", SIGNED_IN, note="each gets only their own"),
    Row(
        "GET",
        "/api/v1/vc/credentials/{credential_id}",
        only(CITIZEN),
        params=lambda w: {"credential_id": w.extra["credential"].public_id},
        needs=("credential",),
    ),
    Row(
        "POST",
        "/api/v1/vc/credentials/{credential_id}/presentations",
        only(CITIZEN),
        params=lambda w: {"credential_id": w.extra["credential"].public_id},
        body=lambda w: {"claims": ["reference"], "audience": "Bank", "lifetime": "1h"},
        needs=("credential",),
    ),
    Row("GET", "/api/v1/notifications", SIGNED_IN),
    Row(
        "POST",
        "/api/v1/notifications/{notification_id}/read",
        only(CITIZEN),
        params=lambda w: {"notification_id": w.persons[CITIZEN].user.notifications.first().pk},
    ),
    Row("GET", "/api/v1/consent/person", NOBODY, note="an OAuth access token only"),
    Row(
        "POST",
        "/api/v1/exchange/profile-updates",
        NOBODY,
        body=lambda w: "a.b.c",
        content_type="application/jose",
        note="requests signed by an agency system only",
    ),
    Row(
        "POST",
        "/api/v1/exchange/person-query",
        NOBODY,
        body=lambda w: "a.b.c",
        content_type="application/jose",
        note="requests signed by an agency system only",
    ),
    Row("GET", "/api/v1/sensors/devices", SENSOR_LISTS, note="sensor.operate; each sees their own agency's"),
    Row(
        "GET",
        "/api/v1/sensors/devices/{device_id}/series",
        SENSOR_WATCHERS,
        path=lambda w: f"/api/v1/sensors/devices/{_sensor_device(w).device_id}/series?quantity=soil_moisture",
    ),
    Row(
        "GET",
        "/api/v1/sensors/groups/{group}/series",
        SENSOR_WATCHERS,
        path=lambda w: f"/api/v1/sensors/groups/{_sensor_device(w).group}/series?quantity=soil_moisture",
        note="another agency has no device in the group: 404",
    ),
    Row(
        "GET",
        "/api/v1/sensors/area/series",
        SENSOR_LISTS,
        path=lambda w: "/api/v1/sensors/area/series?bbox=20,105,22,107&quantity=soil_moisture",
        note="each sees their own agency's devices in the box",
    ),
    Row(
        "POST",
        "/api/v1/sensors/devices/{device_id}/senml",
        NOBODY,
        params=lambda w: {"device_id": _sensor_device(w).device_id},
        body=lambda w: [{"n": "soil_moisture", "u": "%", "v": 30.0}],
        content_type="application/senml+json",
        note="a device's own token only (no session, no API token)",
    ),
]

# Django routes under these prefixes are not listed one by one: they are checked by their own test.
ADMIN_PREFIX = "admin/"
# Django's view of the NinjaAPI; the API's operations are listed from its OpenAPI schema instead.
API_PREFIX = "api/v1/"
API_PAGES = {"api/v1/openapi.json", "api/v1/docs", "api/v1/"}


# --- enumerating the endpoints -----------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def site_routes() -> set[str]:
    return {
        route
        for route in _walk(get_resolver().url_patterns)
        if not route.startswith(ADMIN_PREFIX) and (not route.startswith(API_PREFIX) or route in API_PAGES)
    }


def api_operations() -> set[tuple[str, str]]:
    from config.api import api

    schema = api.get_openapi_schema()
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_endpoint_has_a_row() -> None:
    listed_routes = {row.route for row in ROWS if not row.is_api}
    listed_operations = {row.key for row in ROWS if row.is_api}
    routes = site_routes()
    operations = api_operations()
    missing = sorted(routes - listed_routes)
    missing_api = sorted(operations - listed_operations)
    stale = sorted((listed_routes - routes) | {f"{m} {p}" for m, p in listed_operations - operations})
    lines = []
    if missing or missing_api:
        lines.append("These endpoints are not in the authorization matrix. Decide who may use each and add")
        lines.append("a row to ROWS in tests/test_authorization_matrix.py, for example:")
        lines += [f'    Row("GET", {route!r}, SIGNED_IN),' for route in missing]
        lines += [f"    Row({method!r}, {path!r}, SIGNED_IN)," for method, path in missing_api]
    if stale:
        lines.append("These rows name endpoints that no longer exist; remove them:")
        lines += [f"    {entry}" for entry in stale]
    assert not lines, "\n".join(lines)


def test_every_role_is_decided_once_per_row() -> None:
    unknown = {str(row): sorted(row.allowed - EVERYONE) for row in ROWS if row.allowed - EVERYONE}
    assert not unknown, f"rows name roles that do not exist: {unknown}"
    seen: dict[tuple[str, str, str], int] = {}
    for row in ROWS:
        seen[(row.method, row.route, row.label)] = seen.get((row.method, row.route, row.label), 0) + 1
    assert not [key for key, count in seen.items() if count > 1], "two rows for the same request"


# --- sending the requests ------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")
_API_PARAM = re.compile(r"\{([a-zA-Z_]+)\}")


def url_of(row: Row, w: World) -> str:
    if row.path is not None:
        return row.path(w)
    params = row.params(w) if row.params else {}
    if row.is_api:
        return _API_PARAM.sub(lambda m: str(params[m.group(1)]), row.route)
    return "/" + _CONVERTER.sub(lambda m: str(params[m.group(1)]), row.route)


def client_for(role: str, w: World) -> Client:
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )
    from allauth.account.internal.userkit import user_id_to_str
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    headers: dict[str, str] = {"HTTP_ACCEPT_LANGUAGE": "en"}
    if role in BUSINESS:
        headers["HTTP_X_ACTING_FOR"] = w.organisation.registration_number
    client = Client(**headers)
    user = w.users[role]
    if user is None:
        return client
    # Everyone logs in with a second factor, as the back office requires of officers: the matrix is
    # about what each role may do, not about how they logged in.
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        RecoveryCodes.activate(user)
    client.force_login(user)
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "mfa", "type": "totp", "at": timezone.now().timestamp()}
    ]
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = user_id_to_str(user)
    if role in BUSINESS:
        organisation = w.organisation
        session[SESSION_KEY] = {
            "id": organisation.pk,
            "registration_number": organisation.registration_number,
            "name": organisation.name,
        }
    session.save()
    return client


OAUTH_REFUSALS = {"invalid_client", "invalid_token", "unauthorized_client", "access_denied"}


def outcome(response: Any) -> str:
    status = response.status_code
    if status in (401, 403, 404):
        return "refused"
    if status == 400 and response.get("Content-Type", "").startswith("application/json"):
        error = response.json().get("error") if isinstance(response.json(), dict) else None
        if isinstance(error, str) and error in OAUTH_REFUSALS:
            return "refused"
    if 300 <= status < 400:
        location = response.get("Location", "")
        return "refused" if "/login/" in location else "allowed"
    if status == 405 or status >= 500:
        return f"error {status}"
    return "allowed"


def send(row: Row, role: str, client: Client, w: World) -> str:
    url = url_of(row, w)
    method = row.method.lower()
    kwargs: dict[str, Any] = {}
    if row.body is not None:
        kwargs = {"data": row.body(w), "content_type": row.content_type}
    elif row.data is not None:
        kwargs = {"data": row.data(w)}
    try:
        with transaction.atomic():
            response = getattr(client, method)(url, **kwargs)
            transaction.set_rollback(True)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return f"exception {type(exc).__name__}: {exc}"
    return outcome(response)


@pytest.fixture(autouse=True)
def _forget_registry_entries() -> Iterator[None]:
    yield
    FileBusinessRegistry.forget_added()


# Objects a row `needs`, by name: each builder returns entries for `w.extra`.
NEED_BUILDERS: dict[str, Callable[[World], dict[str, Any]]] = {
    "insights": lambda w: {
        "insights_service": __import__(
            "civicore.applications.tests.factories", fromlist=["make_service"]
        ).make_service(w.officers[OTHER_AGENCY].agency)
    },
    "feedback": lambda w: __import__(
        "civicore.feedback.tests.factories", fromlist=["matrix_objects"]
    ).matrix_objects(w),
    "consultation": lambda w: __import__(
        "civicore.consultations.tests.factories", fromlist=["matrix_objects"]
    ).matrix_objects(w),
    # (need builders end)
}


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_matrix(row: Row, settings: Any, tmp_path: Any) -> None:
    w = build_world()
    if "credential" in row.needs:
        issue_credential(w, settings, tmp_path / "signing")
    elif "result" in row.needs:
        issue_result(w, settings, tmp_path / "signing")
    if "exchange" in row.needs:
        w.extra.update(exchange_objects(w))
    if "consent" in row.needs:
        w.extra["consent"] = consent_of_citizen(w)
    if "payment" in row.needs or "receipt" in row.needs:
        w.extra.update(payment_objects(w))
    if "receipt" in row.needs:
        issue_receipt(w, settings, tmp_path / "signing")
    if "transparency" in row.needs:
        from civicore.transparency import services as transparency

        transparency.log_append(entries=[("issued", "0" * 64)])
        transparency.tree_head_sign_now()
    if "opendata" in row.needs:
        from civicore.opendata.tests.factories import make_resource

        w.extra["resource"] = make_resource(rows=3)
    for need in row.needs:
        if need in NEED_BUILDERS:
            w.extra.update(NEED_BUILDERS[need](w))
    if "routing" in row.needs:
        from civicore.routing.tests.factories import make_model

        w.extra["routing_model"] = make_model()
    wrong = {}
    for role in ROLES:
        got = send(row, role, client_for(role, w), w)
        expected = "allowed" if role in row.allowed else "refused"
        if got != expected:
            wrong[role] = f"expected {expected}, got {got}"
    assert not wrong, f"{row}: " + "; ".join(f"{role}: {text}" for role, text in wrong.items())


def test_admin_site_is_staff_only() -> None:
    """The Django admin (platform staff only) refuses every role of the matrix, on its index
    and every model's list."""
    w = build_world()
    urls = [reverse("admin:index")] + [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]
    wrong = []
    for role in ROLES:
        client = client_for(role, w)
        for url in urls:
            got = outcome(client.get(url))
            if got != "refused":
                wrong.append(f"{role} {url}: {got}")
    assert not wrong, "\n".join(wrong)
