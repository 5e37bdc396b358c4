from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from allauth.account.models import EmailAddress

from civicore.agencies.models import Agency
from civicore.identity.models import Person, User
from civicore.identity.services import person_register

PASSWORD = "correct horse battery staple 42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Sequence(lambda n: f"Nguyễn Văn {n}")

    @factory.post_generation
    def password(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


_national_ids = iter(range(1, 10**9))
_agencies = iter(range(1, 10**9))


def population_register() -> Agency:
    """The agency of record for identity in tests."""
    agency, _created = Agency.objects.get_or_create(
        code="population-register",
        defaults={
            "name_vi": "Cơ sở dữ liệu quốc gia về dân cư",
            "name_en": "National Population Database",
            "level": Agency.Level.NATIONAL,
        },
    )
    return agency


def make_register(name_en: str = "", name_vi: str = "") -> Agency:
    """Another agency of record (civil status, vehicles, ...)."""
    n = next(_agencies)
    return Agency.objects.create(
        code=f"register-{n}", name_vi=name_vi or f"Cơ quan đăng ký {n}", name_en=name_en or f"Register {n}"
    )


def next_national_id() -> str:
    return f"0790{next(_national_ids):08d}"


def make_citizen(**user_kwargs: Any) -> Person:
    """A citizen with a verified profile from the national population database."""
    user = UserFactory(**user_kwargs)
    return person_register(
        user=user,
        national_id=next_national_id(),
        full_name=user.full_name or "Nguyễn Văn An",
        date_of_birth=dt.date(1990, 5, 17),
        address="12 Đường Lê Lợi, xã An Bình",
        agency=population_register(),
    )


def make_self_registered_citizen(**user_kwargs: Any) -> Person:
    """A citizen who signed up on the portal: assurance level 1, everything declared."""
    from civicore.identity.services import person_self_register

    user = UserFactory(**user_kwargs)
    return person_self_register(
        user=user, national_id=next_national_id(), full_name=user.full_name or "Lê Văn Cường"
    )


TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - test-only secret


def log_in(client: Any, user: User, *, second_factor: bool = True, password: str = PASSWORD) -> None:
    """Log in through allauth's pages as a person does: the password, then (when the user has an
    authenticator, which `second_factor` sets up) a single-use recovery code, so no test depends
    on the clock or on another test's used TOTP codes."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    if second_factor:
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, TOTP_SECRET)
        stored = Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).first()
        codes = RecoveryCodes(stored) if stored is not None else RecoveryCodes.activate(user)
    response = client.post("/accounts/login/", {"login": user.email, "password": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    if second_factor:
        assert response["Location"] == "/accounts/2fa/authenticate/"
        response = client.post("/accounts/2fa/authenticate/", {"code": codes.get_unused_codes()[0]})
        assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(user.pk)
