from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import factory
from django.test import Client

from civicore.agencies.models import Agency, Officer
from civicore.identity.tests.factories import UserFactory


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency

    code = factory.Sequence(lambda n: f"agency-{n}")
    name_vi = factory.Sequence(lambda n: f"Cơ quan {n}")
    name_en = factory.Sequence(lambda n: f"Agency {n}")


def make_officer(
    agency: Agency | None = None, roles: Iterable[str] = ("caseworker",), **kwargs: Any
) -> Officer:
    """An officer working cases by default; pass `roles=()` for a new officer's (none)."""
    return Officer.objects.create(
        user=UserFactory(), agency=agency or AgencyFactory(), roles=sorted(roles), **kwargs
    )


def make_agency_admin(agency: Agency | None = None, **kwargs: Any) -> Officer:
    return make_officer(agency=agency, roles=("agency_admin",), **kwargs)


def back_office_client(user: Any, *, language: str = "en") -> Client:
    """A browser session of an officer who logged in with their second factor, as the back
    office requires (a bare force_login is sent to confirm one)."""
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )
    from allauth.account.internal.userkit import user_id_to_str
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, TOTP_SECRET)
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [{"method": "mfa", "type": "totp", "at": time.time()}]
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = user_id_to_str(user)
    session.save()
    return client


TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - test-only secret
