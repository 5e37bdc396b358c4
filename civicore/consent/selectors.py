"""Reads for consented sharing: the citizen's consents, and what a code or token stands for."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.consent.models import AccessToken, AuthorizationCode, ClientSession, Consent, RefreshToken
from civicore.core import rowsql
from civicore.identity import items as item_registry
from civicore.identity.models import Person, ProfileItem, User
from civicore.identity.selectors import profile_items_with_keys
from civicore.registry.models import AgencyApplication


def application_for_client(client_id: object) -> AgencyApplication | None:
    """The active application registered under `client_id`, with its agency: read on every
    call (switching an application off or changing its keys takes effect at once), with one
    plain statement rather than an ORM query, as every client authentication needs it."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 100:
        return None
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT {rowsql.columns(AgencyApplication, 'c')}, {rowsql.columns(Agency, 'g')} "  # noqa: S608 - ours
            f"FROM {AgencyApplication._meta.db_table} c JOIN {Agency._meta.db_table} g ON g.id = c.agency_id "
            "WHERE c.client_id = %s AND c.active = %s",
            [client_id, True],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    split = rowsql.width(AgencyApplication)
    application = rowsql.from_row(AgencyApplication, row[:split])
    if application is not None:
        AgencyApplication._meta.get_field("agency").set_cached_value(
            application, rowsql.from_row(Agency, row[split:])
        )
    return application


def nonce_used(*, application: AgencyApplication, nonce: str) -> bool:
    """Whether a code was already issued to the application for this OpenID Connect nonce."""
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {AuthorizationCode._meta.db_table} "  # noqa: S608 - ours
            "WHERE application_id = %s AND nonce = %s AND nonce <> '' LIMIT 1",  # consent_code_nonce
            [application.pk, nonce],
        )
        return cursor.fetchone() is not None


def consents_for(*, person: Person) -> QuerySet[Consent]:
    return (
        Consent.objects.filter(person=person)
        .select_related("application__agency")
        .order_by("-granted_at", "-id")
    )


def active_consents_for(*, person: Person) -> QuerySet[Consent]:
    return consents_for(person=person).filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


def ended_consents_for(*, person: Person) -> QuerySet[Consent]:
    return consents_for(person=person).filter(Q(revoked_at__isnull=False) | Q(expires_at__lte=timezone.now()))


def active_consent_for(*, person: Person, application: AgencyApplication, purpose: str) -> Consent | None:
    """The citizen's newest active consent to `application` for `purpose`: one plain statement."""
    found = _fetch_joined(
        [(Consent, "n")],
        f"FROM {_table(Consent)} n WHERE n.person_id = %s AND n.application_id = %s "  # noqa: S608 - ours
        "AND n.purpose = %s AND n.revoked_at IS NULL AND n.expires_at > %s "
        "ORDER BY n.granted_at DESC, n.id DESC LIMIT 1",
        [person.pk, application.pk, purpose, connection.ops.adapt_datetimefield_value(timezone.now())],
    )
    if found is None:
        return None
    consent: Consent = found[0]
    _link(consent, "person", person)
    _link(consent, "application", application)
    return consent


def consent_covers(consent: Consent, *, items: Iterable[str], offline: bool) -> bool:
    """The consent is active and allows every item asked for, and offline access if asked."""
    return (
        consent.is_active() and set(items) <= set(consent.items) and (consent.offline_access or not offline)
    )


def covering_consent(
    *, person: Person, application: AgencyApplication, purpose: str, items: list[str], offline: bool
) -> Consent | None:
    """The citizen's active consent that already allows what a request asks (prompt=none)."""
    consent = active_consent_for(person=person, application=application, purpose=purpose)
    if consent is None or not consent_covers(consent, items=items, offline=offline):
        return None
    return consent


def consent_for_update(*, pk: int) -> Consent | None:
    """The consent, row-locked until the end of the caller's transaction."""
    return (
        Consent.objects.select_for_update(of=("self",))
        .select_related("person", "application__agency")
        .filter(pk=pk)
        .first()
    )


def _fetch_joined(models: list[tuple[type[Model], str]], rest: str, params: list[Any]) -> list[Any] | None:
    """One row of several joined tables (`rest`: FROM ... WHERE ..., naming each model's table by
    its alias), as one instance per model: None for a model an outer join found nothing in."""
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(rowsql.columns(model, alias) for model, alias in models)} {rest}", params
        )
        row = cursor.fetchone()
    if row is None:
        return None
    instances, at = [], 0
    for model, _alias in models:
        width = rowsql.width(model)
        instances.append(rowsql.from_row(model, row[at : at + width]))
        at += width
    return instances


def _link(instance: Model, field: str, target: Model | None) -> None:
    """What select_related leaves: `instance.<field>` is `target`, without a query."""
    type(instance)._meta.get_field(field).set_cached_value(instance, target)  # type: ignore[union-attr]


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def code_by_hash(*, code_hash: str, application: AgencyApplication) -> AuthorizationCode | None:
    """The application's code with its consent, the consent's citizen (with their user account),
    application and agency: one plain statement."""
    found = _fetch_joined(
        [
            (AuthorizationCode, "k"),
            (Consent, "n"),
            (Person, "p"),
            (User, "u"),
            (AgencyApplication, "a"),
            (Agency, "g"),
        ],
        f"FROM {_table(AuthorizationCode)} k JOIN {_table(Consent)} n ON n.id = k.consent_id "  # noqa: S608 - ours
        f"JOIN {_table(Person)} p ON p.id = n.person_id JOIN {_table(User)} u ON u.id = p.user_id "
        f"JOIN {_table(AgencyApplication)} a ON a.id = n.application_id "
        f"JOIN {_table(Agency)} g ON g.id = a.agency_id "
        "WHERE k.code_hash = %s AND k.application_id = %s",
        [code_hash, application.pk],
    )
    if found is None:
        return None
    code, consent, person, user, consent_application, agency = found
    _link(code, "consent", consent)
    _link(consent, "person", person)
    _link(person, "user", user)
    _link(consent, "application", consent_application)
    _link(consent_application, "agency", agency)
    return code  # type: ignore[no-any-return]


def token_and_consent_for_update(token_hash: str) -> tuple[AccessToken, Consent] | None:
    """The access token with its code, and its consent (with the citizen, application and
    agency), the consent row-locked until the end of the caller's transaction: one plain
    statement."""
    lock = " FOR UPDATE OF n" if connection.features.has_select_for_update_of else ""
    found = _fetch_joined(
        [
            (AccessToken, "t"),
            (AuthorizationCode, "k"),
            (Consent, "n"),
            (Person, "p"),
            (AgencyApplication, "a"),
            (Agency, "g"),
        ],
        f"FROM {_table(AccessToken)} t JOIN {_table(Consent)} n ON n.id = t.consent_id "  # noqa: S608 - ours
        f"LEFT JOIN {_table(AuthorizationCode)} k ON k.id = t.code_id "
        f"JOIN {_table(Person)} p ON p.id = n.person_id "
        f"JOIN {_table(AgencyApplication)} a ON a.id = n.application_id "
        f"JOIN {_table(Agency)} g ON g.id = a.agency_id "
        f"WHERE t.token_hash = %s{lock}",
        [token_hash],
    )
    if found is None:
        return None
    access, code, consent, person, consent_application, agency = found
    _link(access, "code", code)
    _link(access, "consent", consent)
    _link(consent, "person", person)
    _link(consent, "application", consent_application)
    _link(consent_application, "agency", agency)
    return access, consent


def token_by_hash(token_hash: str) -> AccessToken | None:
    return AccessToken.objects.filter(token_hash=token_hash).first()


def refresh_token_by_hash(token_hash: str) -> RefreshToken | None:
    """The refresh token with what a refresh needs: its consent, person and family's code."""
    return (
        RefreshToken.objects.select_related("consent__person", "consent__application__agency", "code")
        .filter(token_hash=token_hash)
        .first()
    )


@dataclass(frozen=True)
class HeldItem:
    """A profile item as consented sharing hands it out and shows it."""

    key: str
    value: Any  # as a JSON value, the way the Agency API answers everywhere
    display: dict[str, Any]  # for identity/_value.html
    source: dict[str, Any]  # {"kind": "agency" | "declared", "agency", "agency_name": {vi, en}}
    source_label: str  # who stands behind the value, in the active language
    verified_at: datetime | None


def _held(item: ProfileItem) -> HeldItem:
    """The one place this app reads a ProfileItem's value and provenance."""
    try:
        value_type = item_registry.get(item.key).type
        value, display = value_type.parse(item.value), value_type.display(item.value)
    except (item_registry.UnknownItem, ValueError):
        value, display = item.value, {"kind": "text", "text": item.value}
    agency = item.agency
    return HeldItem(
        key=item.key,
        value=value,
        display=display,
        source={
            "kind": item.source_kind,
            "agency": agency.code if agency else None,
            "agency_name": {"vi": agency.name_vi, "en": agency.name_en} if agency else None,
        },
        source_label=item.source_label,
        verified_at=item.verified_at,
    )


def profile_items_for(*, person: Person, keys: list[str]) -> dict[str, HeldItem]:
    """The person's items among `keys`, with their agencies, in one statement."""
    return {key: _held(item) for key, item in profile_items_with_keys(person, keys).items()}


def consents_by_public_id(public_ids: Iterable[object]) -> dict[str, Consent]:
    """The consents named in audit details, in one query."""
    valid: set[uuid.UUID] = set()
    for value in public_ids:
        try:
            valid.add(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not valid:
        return {}
    return {str(c.public_id): c for c in Consent.objects.filter(public_id__in=valid)}


def frontchannel_logout_sessions(*, sid: str) -> list[ClientSession]:
    """The applications of a login session that registered a front-channel logout URI, in the
    order they joined it."""
    if not sid:
        return []
    return list(
        ClientSession.objects.filter(sid=sid, application__active=True)
        .exclude(application__frontchannel_logout_uri="")
        .select_related("application")
        .order_by("issued_at", "pk")
    )
