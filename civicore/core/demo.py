"""Demo data: a province with its agencies, the imported catalogue, the online services, and
people to log in as (citizens and one officer per agency), each with a TOTP second factor.

The demo secrets are fixed so the printed logins keep working across reloads. Never load the
demo into a real installation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.db import transaction

from civicore.agencies.models import Agency, Officer
from civicore.catalogue import services as catalogue
from civicore.identity.models import User
from civicore.identity.services import person_find_by_national_id, person_register

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

OFFICER_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"  # noqa: S105 - published demo credential


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


@transaction.atomic
def load() -> list[DemoLogin]:
    catalogue.agencies_load()
    catalogue.procedures_import()
    for path in sorted(SERVICES_DIR.glob("*.yaml")):
        catalogue.service_load(definition=yaml.safe_load(path.read_text(encoding="utf-8")))

    logins: list[DemoLogin] = []
    for email, name, national_id, born, address, secret in CITIZENS:
        user = _user(email, name)
        if person_find_by_national_id(national_id) is None:
            person_register(
                user=user,
                national_id=national_id,
                full_name=name,
                date_of_birth=born,
                address=address,
                source="Cơ sở dữ liệu quốc gia về dân cư (National Population Database)",
                extra={"phone": "0901234567", "gender": "male" if "Văn" in name else "female"},
            )
        _totp(user, secret)
        logins.append(DemoLogin("citizen", email, DEMO_PASSWORD, secret, name))

    for agency in Agency.objects.filter(services__isnull=False).distinct().order_by("code"):
        email = f"officer.{agency.code}@demo.civicore.invalid"
        user = _user(email, f"Cán bộ {agency.name_vi}")
        Officer.objects.update_or_create(
            user=user, defaults={"agency": agency, "role": Officer.Role.CASEWORKER}
        )
        _totp(user, OFFICER_SECRET)
        logins.append(
            DemoLogin(f"officer ({agency.code})", email, DEMO_PASSWORD, OFFICER_SECRET, user.full_name)
        )

    admin = _user("admin@demo.civicore.invalid", "Quản trị viên", staff=True)
    admin.is_superuser = True
    admin.save(update_fields=["is_superuser"])
    _totp(admin, OFFICER_SECRET)
    logins.append(DemoLogin("administrator", admin.email, DEMO_PASSWORD, OFFICER_SECRET, admin.full_name))
    return logins
