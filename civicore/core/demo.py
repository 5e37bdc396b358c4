"""Demo data: a province with its agencies, the imported catalogue, the online services, and
people to log in as (citizens and one officer per agency), each with a TOTP second factor. The
citizens from the population database are verified (assurance level 2); one more registered
himself on the portal and is at level 1, to show how a service asks for a verified identity.
Citizens' profiles carry realistic provenance: identity from the Ministry of Public Security's
population database, marital status from the civil-status register, vehicles from the police,
and education and a current address they declared themselves. Agencies whose services charge a
fee collect it into a demo bank account (VietQR transfers) or through the VNPAY sandbox gateway,
and one of them has a payments officer.

The demo secrets are fixed so the printed logins keep working across reloads. Never load the
demo into a real installation.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.db import transaction

from civicore.agencies.models import Agency
from civicore.agencies.services import officer_provision
from civicore.catalogue import services as catalogue
from civicore.identity.models import Person, User
from civicore.identity.services import (
    person_find_by_national_id,
    person_register,
    person_self_register,
    profile_item_declare,
    profile_items_record,
)

SERVICES_DIR = Path(catalogue.__file__).resolve().parent / "data" / "services"
DEMO_PASSWORD = "Civicore-demo-2026"  # noqa: S105 - published demo credential


@dataclass
class DemoLogin:
    role: str
    email: str
    password: str
    totp_secret: str
    name: str


CITIZENS = [
    (
        "an@demo.civicore.invalid",
        "Nguyễn Văn An",
        "079090001234",
        dt.date(1990, 5, 17),
        "Số 12 đường Lê Lợi, ấp 3, xã An Bình, tỉnh Bình An",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    ),
    (
        "binh@demo.civicore.invalid",
        "Trần Thị Bình",
        "079192005678",
        dt.date(1992, 11, 3),
        "Số 45 đường Nguyễn Trãi, xã An Bình, tỉnh Bình An",
        "KRUGS4ZANFZSAYJAORSXG5BAONSWG4TF",
    ),
]

PHONES = {"079090001234": "0901234567", "079192005678": "0912345678"}

# A citizen who created their account on the portal: identity assurance level 1 (not yet verified
# by an officer or an agency), so services that need level 2 (birth registration) ask them to
# get verified first. (email, name, national ID, phone, TOTP secret)
SELF_REGISTERED = (
    "cuong@demo.civicore.invalid",
    "Lê Văn Cường",
    "079095009012",
    "0987654321",
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
)

# The national register of identity; the other agencies come from the catalogue's agencies.yaml.
POPULATION_REGISTER = {
    "code": "bo-cong-an",
    "name_vi": "Bộ Công an",
    "name_en": "Ministry of Public Security",
    "level": Agency.Level.NATIONAL,
}
CIVIL_STATUS_REGISTER = "so-tu-phap"
VEHICLE_REGISTER = "cong-an-xa-an-binh"

# What each demo citizen's profile holds beyond registration, by national ID:
# (agency code or "declared", {item: value}).
PROFILES: dict[str, list[tuple[str, dict[str, object]]]] = {
    "079090001234": [
        (
            POPULATION_REGISTER["code"],
            {
                "household_members": [
                    {"name": "Nguyễn Văn An", "relationship": "head", "date_of_birth": "1990-05-17"},
                    {"name": "Lê Thị Hoa", "relationship": "spouse", "date_of_birth": "1991-08-02"},
                    {"name": "Nguyễn Minh Khang", "relationship": "child", "date_of_birth": "2019-03-12"},
                ],
            },
        ),
        (CIVIL_STATUS_REGISTER, {"marital_status": "married"}),
        (VEHICLE_REGISTER, {"vehicle": [{"plate": "93H1-123.45", "kind": "motorbike"}]}),
        (
            "declared",
            {
                "education": {"level": "bachelor", "institution": "Trường Đại học Cần Thơ", "year": 2012},
                "current_address": "Số 8 hẻm 14 đường Trần Phú, xã An Bình, tỉnh Bình An",
            },
        ),
    ],
    "079192005678": [
        (
            POPULATION_REGISTER["code"],
            {
                "household_members": [
                    {"name": "Trần Văn Bảo", "relationship": "head", "date_of_birth": "1965-01-20"},
                    {"name": "Trần Thị Bình", "relationship": "child", "date_of_birth": "1992-11-03"},
                ],
            },
        ),
        (CIVIL_STATUS_REGISTER, {"marital_status": "single"}),
        (
            VEHICLE_REGISTER,
            {
                "vehicle": [
                    {"plate": "93B2-456.78", "kind": "motorbike"},
                    {"plate": "93A-012.34", "kind": "car"},
                ]
            },
        ),
        (
            "declared",
            {
                "education": {"level": "upper_secondary", "institution": "Trường THPT An Bình", "year": 2010},
            },
        ),
    ],
}

OFFICER_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"  # noqa: S105 - published demo credential

# Each agency's demo officer works and decides its cases; the commune's agency admin manages
# its officers and systems but sees no case (least privilege).
# Each agency's demo officer also sees the agency's performance and its citizens' ratings.
OFFICER_ROLES = ("decider", "issuer", "agency_head")
ADMIN_AGENCY = "ubnd-xa-an-binh"
# The commune police also check identity cards in person and verify accounts (level 2).
IDENTITY_AGENCY = "cong-an-xa-an-binh"

# A household business of the first demo citizen, in the embedded business registry
# (civicore/organisations/data/business_registry.yaml); the second citizen may file its
# household business registration.
BUSINESS = "8123456789"
BUSINESS_SERVICE = "household-business-registration"


# Fees: each agency with a service that charges anything collects into an account at one of the
# banks that hold the State Treasury's collection accounts (real Napas BINs). The account numbers
# start with DEMO, which no bank issues: a banking app that scans a demo VietQR code finds nobody.
COLLECTION_BANKS = {
    "ubnd-xa-an-binh": ("970415", "VietinBank"),
    "cong-an-xa-an-binh": ("970418", "BIDV"),
    "phong-kinh-te-an-binh": ("970436", "Vietcombank"),
    "so-xay-dung": ("970405", "Agribank"),
}
DEFAULT_COLLECTION_BANK = ("970436", "Vietcombank")
# The household business registration fee (fixed, due at submission) is collected here; its
# payments officer sees the agency's payments and refunds them.
PAYMENTS_AGENCY = "phong-kinh-te-an-binh"
PAYMENTS_ROLES = ("payments_officer",)


def demo_account_number(agency_code: str) -> str:
    """A fixed, clearly fake account number for an agency (the same on every load)."""
    return f"DEMO{zlib.crc32(agency_code.encode()):010d}"


def _fee_agencies() -> list[Agency]:
    from civicore.catalogue.models import Service
    from civicore.payments.fees import charges_anything

    codes = {
        service.agency.code
        for service in Service.objects.select_related("agency", "current_version").filter(
            current_version__isnull=False
        )
        if service.current_version is not None
        and charges_anything(service.current_version.definition.get("fee") or {"amount": 0})
    }
    return list(Agency.objects.filter(code__in=codes).order_by("code"))


def _collection_accounts() -> None:
    """One active account per agency that charges fees. An account already there (and whatever an
    officer changed on it, e.g. closing it) is kept; loading again adds nothing."""
    from civicore.payments.models import CollectionAccount

    for agency in _fee_agencies():
        if agency.collection_accounts.exists():
            continue
        bank_bin, bank_name = COLLECTION_BANKS.get(agency.code, DEFAULT_COLLECTION_BANK)
        account = CollectionAccount(
            agency=agency,
            bank_bin=bank_bin,
            bank_name=bank_name,
            account_number=demo_account_number(agency.code),
            account_name=agency.name_vi[:70],
            currency="VND",
            active=True,
        )
        account.full_clean()
        account.save()


def _payments_officer() -> list[DemoLogin]:
    agency = Agency.objects.filter(code=PAYMENTS_AGENCY).first()
    if agency is None:
        return []
    user = _user(f"payments.{agency.code}@demo.civicore.invalid", f"Kế toán {agency.name_vi}")
    officer_provision(actor=None, user=user, agency=agency, roles=list(PAYMENTS_ROLES))
    _totp(user, OFFICER_SECRET)
    return [
        DemoLogin(
            f"payments officer ({agency.code}): payments, refunds",
            user.email,
            DEMO_PASSWORD,
            OFFICER_SECRET,
            user.full_name,
        )
    ]


def _agency_admin() -> list[DemoLogin]:
    agency = Agency.objects.filter(code=ADMIN_AGENCY).first()
    if agency is None:
        return []
    user = _user(f"admin.{agency.code}@demo.civicore.invalid", f"Quản trị {agency.name_vi}")
    officer_provision(actor=None, user=user, agency=agency, roles=["agency_admin"])
    _totp(user, OFFICER_SECRET)
    return [
        DemoLogin(
            f"agency admin ({agency.code}): officers, systems",
            user.email,
            DEMO_PASSWORD,
            OFFICER_SECRET,
            user.full_name,
        )
    ]


def _business() -> list[DemoLogin]:
    """Register the business for its representative, invite the second citizen and let them
    file one service for it for a year. Loading again leaves it as it is."""
    from django.utils import timezone

    from civicore.catalogue.models import Service
    from civicore.organisations import services as organisations
    from civicore.organisations.models import Membership, Organisation

    # CITIZENS rows: (email, name, national ID, born, address, TOTP secret)
    first, second = CITIZENS[0], CITIZENS[1]
    admin, member = person_find_by_national_id(first[2]), person_find_by_national_id(second[2])
    service = Service.objects.filter(code=BUSINESS_SERVICE).first()
    if admin is None or member is None or service is None:
        return []
    organisation = Organisation.objects.filter(registration_number=BUSINESS).first()
    if organisation is None:
        organisation = organisations.organisation_register(person=admin, registration_number=BUSINESS)
    membership = Membership.objects.filter(organisation=organisation, person=member).first()
    if membership is None or membership.removed_at is not None:
        membership = organisations.member_invite(
            admin=admin, organisation=organisation, national_id=second[2]
        )
    if membership.accepted_at is None:
        membership = organisations.member_accept(person=member, membership=membership)
    if not membership.grants.filter(
        service=service, permission="file", revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).exists():
        organisations.role_grant(
            admin=admin,
            organisation=organisation,
            membership=membership,
            permission="file",
            service=service,
            expires_at=timezone.now() + dt.timedelta(days=365),
        )
    return [
        DemoLogin(
            f"business admin: {organisation.name} ({organisation.registration_number})",
            first[0],
            DEMO_PASSWORD,
            first[5],
            first[1],
        ),
        DemoLogin(
            f"business role: file {service.code} for {organisation.registration_number}",
            second[0],
            DEMO_PASSWORD,
            second[5],
            second[1],
        ),
    ]


def _reports() -> list[DemoLogin]:
    """Problem reports: the city's service companies with a report handler each, the categories
    and demo reports (civicore.reports.demo); the admin commune's officer also triages and
    stewards the AI models."""
    from civicore.reports import demo as reports_demo

    def make_user(email: str, name: str) -> User:
        user = _user(email, name)
        _totp(user, OFFICER_SECRET)
        return user

    reporters = list(User.objects.filter(email__in=[entry[0] for entry in CITIZENS]).order_by("email"))
    return [
        DemoLogin(role, email, DEMO_PASSWORD, OFFICER_SECRET, name)
        for role, email, name in reports_demo.load(make_user=make_user, reporters=reporters)
    ]


def _sensors() -> list[DemoLogin]:
    """City sensors: device types, devices in two parks and four districts, the irrigation and
    silent-device rules, and a sensor engineer (civicore.sensors.demo)."""
    from civicore.sensors import demo as sensors_demo

    def make_user(email: str, name: str) -> User:
        user = _user(email, name)
        _totp(user, OFFICER_SECRET)
        return user

    return [
        DemoLogin(role, email, DEMO_PASSWORD, OFFICER_SECRET, name)
        for role, email, name in sensors_demo.load(make_user=make_user)
    ]


# A birth registered for the first demo citizen, approved and issued: its signed PDF and its
# credential are in "My documents", ready to share (for example only the child's year of birth).
DEMO_BIRTH = {
    "relationship_to_child": "father",
    "child_full_name": "Nguyễn Minh Khang",
    "child_date_of_birth": "2026-03-14",
    "child_gender": "male",
    "child_place_of_birth": "Trạm y tế xã An Bình, tỉnh Bình An",
    "mother_full_name": "Trần Thị Mai",
    "father_full_name": "Nguyễn Văn An",
}


def _demo_certificate_pdf() -> bytes:
    import io

    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 760, "Giay chung sinh (mau demo) - Tram y te xa An Binh")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _issued_result() -> None:
    """File, approve and issue the demo birth registration once (skipped without signing keys)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from civicore.applications import services as applications
    from civicore.applications.models import Application
    from civicore.cases.services import case_approve, case_claim
    from civicore.catalogue.models import Service
    from civicore.credentials.services import SigningNotConfigured, result_issue
    from civicore.vc.services import credential_issue

    person = person_find_by_national_id(CITIZENS[0][2])
    service = Service.objects.filter(code="birth-registration").select_related("agency").first()
    if person is None or service is None:
        return
    officer = service.agency.officers.filter(
        user__email=f"officer.{service.agency.code}@demo.civicore.invalid"
    ).first()
    if officer is None:
        return
    application = (
        Application.objects.filter(applicant=person, service=service, status=Application.Status.SUBMITTED)
        .order_by("id")
        .first()
    )
    if application is None:
        with transaction.atomic():
            application = applications.application_start(person=person, service=service)
            applications.document_attach(
                application=application,
                requirement="birth-certificate",
                upload=SimpleUploadedFile("giay-chung-sinh.pdf", _demo_certificate_pdf(), "application/pdf"),
            )
            application = applications.application_submit(application=application, answers=dict(DEMO_BIRTH))
            case_approve(case=case_claim(case=application.case, officer=officer), officer=officer)
    try:
        document = result_issue(application_id=application.pk)  # the existing one on a second load
    except SigningNotConfigured:
        return
    credential_issue(document_id=document.pk)


def _totp(user: User, secret: str) -> None:
    Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).delete()
    TOTP.activate(user, secret)


def _user(email: str, name: str, *, staff: bool = False) -> User:
    user, _created = User.objects.get_or_create(
        email=email, defaults={"username": email.split("@")[0], "full_name": name, "is_staff": staff}
    )
    user.full_name = name
    user.set_password(DEMO_PASSWORD)
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


def _profile(person: Person, entries: list[tuple[str, dict[str, object]]]) -> None:
    """Record the demo profile; loading again changes nothing but the verification dates."""
    for source, values in entries:
        if source == "declared":
            for key, value in values.items():
                profile_item_declare(person=person, key=key, value=value)
        else:
            profile_items_record(person=person, values=dict(values), agency=Agency.objects.get(code=source))


def _consultations() -> list[DemoLogin]:
    """An open and an answered consultation of the admin commune, with ideas, votes and comments
    by the demo citizens (civicore.consultations.demo)."""
    from civicore.consultations import demo as consultations_demo

    def make_user(email: str, name: str) -> User:
        user = _user(email, name)
        _totp(user, OFFICER_SECRET)
        return user

    citizens = list(User.objects.filter(email__in=[entry[0] for entry in CITIZENS]).order_by("email"))
    agency = Agency.objects.get(code=ADMIN_AGENCY)
    return [
        DemoLogin("consultation manager", user.email, DEMO_PASSWORD, OFFICER_SECRET, user.full_name)
        for user in consultations_demo.load(agency=agency, make_user=make_user, citizens=citizens)
    ]


def _performance() -> None:
    """The scorecards' tallies, recomputed from everything the demo made (ratings kept)."""
    from civicore.insights.services import tallies_rebuild

    tallies_rebuild()


def _open_data() -> None:
    """The open datasets, from the demo's own services, applications, reports and sensors."""
    from civicore.opendata.services import datasets_refresh

    datasets_refresh()


@transaction.atomic
def load() -> list[DemoLogin]:
    catalogue.agencies_load()
    catalogue.procedures_import()
    for path in sorted(SERVICES_DIR.glob("*.yaml")):
        catalogue.service_load(definition=yaml.safe_load(path.read_text(encoding="utf-8")))

    population, _created = Agency.objects.update_or_create(
        code=POPULATION_REGISTER["code"],
        defaults={k: v for k, v in POPULATION_REGISTER.items() if k != "code"},
    )
    logins: list[DemoLogin] = []
    for email, name, national_id, born, address, secret in CITIZENS:
        user = _user(email, name)
        person = person_find_by_national_id(national_id)
        if person is None:
            person = person_register(
                user=user,
                national_id=national_id,
                full_name=name,
                date_of_birth=born,
                address=address,
                agency=population,
                extra={"phone": PHONES[national_id], "gender": "male" if "Văn" in name else "female"},
            )
        _profile(person, PROFILES.get(national_id, []))
        _totp(user, secret)
        logins.append(DemoLogin("citizen (verified, level 2)", email, DEMO_PASSWORD, secret, name))

    email, name, national_id, phone, secret = SELF_REGISTERED
    user = _user(email, name)
    if person_find_by_national_id(national_id) is None:
        person_self_register(user=user, national_id=national_id, full_name=name, phone=phone)
    _totp(user, secret)
    logins.append(DemoLogin("citizen (unverified, level 1)", email, DEMO_PASSWORD, secret, name))

    for agency in Agency.objects.filter(services__isnull=False).distinct().order_by("code"):
        email = f"officer.{agency.code}@demo.civicore.invalid"
        user = _user(email, f"Cán bộ {agency.name_vi}")
        roles = [*OFFICER_ROLES, *(["identity_verifier"] if agency.code == IDENTITY_AGENCY else [])]
        officer_provision(actor=None, user=user, agency=agency, roles=roles)
        _totp(user, OFFICER_SECRET)
        logins.append(
            DemoLogin(
                f"officer ({agency.code}): {', '.join(roles)}",
                email,
                DEMO_PASSWORD,
                OFFICER_SECRET,
                user.full_name,
            )
        )
    logins.extend(_agency_admin())
    _collection_accounts()
    logins.extend(_payments_officer())
    logins.extend(_business())
    logins.extend(_reports())
    logins.extend(_sensors())
    _issued_result()
    logins.extend(_consultations())
    _performance()
    _open_data()

    admin = _user("admin@demo.civicore.invalid", "Quản trị viên", staff=True)
    admin.is_superuser = True
    admin.save(update_fields=["is_superuser"])
    _totp(admin, OFFICER_SECRET)
    logins.append(DemoLogin("administrator", admin.email, DEMO_PASSWORD, OFFICER_SECRET, admin.full_name))
    return logins
