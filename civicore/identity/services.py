"""Writes for people, their verified data and their API tokens.

Profile items change only through `profile_items_record` (an agency of record) and
`profile_item_declare` (the citizen). Both validate every value against the item registry, keep
the history, write one audit entry and send `profile_items_changed`, all in one transaction, and
only when something changed: recording the same value again just refreshes `verified_at`.
`person_register` records the first items with their history, without audit entry or signal.

Identity assurance: `person_self_register` (sign-up) creates a person at level 1 from what the
citizen states; `person_register` (an agency of record) at level 2; `person_assurance_raise`
records an officer's or an agency's confirmation. `assurance_require` is the check that portal
and API views run before a service that needs a level or a recent second factor.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.audit import services as audit
from civicore.core import rowsql
from civicore.core.crypto import lookup_hash
from civicore.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.identity import items as item_registry
from civicore.identity.models import ApiToken, Person, ProfileItem, ProfileItemChange, User
from civicore.identity.selectors import (
    NATIONAL_ID_PURPOSE,
    last_second_factor_at,
    person_find,
    service_assurance,
)
from civicore.identity.signals import profile_items_changed, session_ending

if TYPE_CHECKING:
    from allauth.usersessions.models import UserSession

    from civicore.agencies.models import Agency, Officer
    from civicore.catalogue.models import ServiceVersion
    from civicore.registry.models import AgencyApplication

TOKEN_PREFIX = "cvc_"  # noqa: S105 - a public marker, not a secret


class InvalidItemValues(ValidationFailed):
    """One or more profile values do not fit their item. `details` maps each item key to its
    message; `field_errors` maps it to the messages per sub-field, for forms."""

    code = "invalid_item_values"

    def __init__(self, errors: dict[str, item_registry.ItemValueError]):
        super().__init__(
            _("Some values are not valid; nothing was saved."),
            details={key: error.message() for key, error in errors.items()},
        )
        self.field_errors = {key: error.errors for key, error in errors.items()}


class ItemNotDeclarable(PermissionDenied):
    """The citizen may not state or change this item."""

    code = "item_not_declarable"


class NationalIdTaken(Conflict):
    """Another account already holds this national ID number. The message never says whose."""

    code = "national_id_taken"


class AssuranceLevelTooLow(PermissionDenied):
    """The service needs a verified identity; `details` has the level required and the person's."""

    code = "assurance_level_too_low"


class FreshSecondFactorRequired(PermissionDenied):
    """The service needs a second factor used in the last `details.within_minutes` minutes."""

    code = "fresh_second_factor_required"


def national_id_taken_message() -> str:
    return _(
        "This national ID number is already linked to an account. If the account is yours, log in "
        "or reset your password. If it is not, bring your citizen identity card to a one-stop "
        "service desk and an officer will help you."
    )


def item_lookup_hash(key: str, value: str) -> str:
    """The keyed hash an identifying item is found by ('' for other items). For national_id it
    equals Person.national_id_hash."""
    if not item_registry.get(key).identifies:
        return ""
    return lookup_hash(value, purpose=key)


def clean_item_values(values: dict[str, Any]) -> dict[str, str]:
    """Every value checked against its item; all problems reported at once."""
    cleaned: dict[str, str] = {}
    errors: dict[str, item_registry.ItemValueError] = {}
    for key, raw in values.items():
        try:
            definition = item_registry.get(key)
        except item_registry.UnknownItem:
            errors[key] = item_registry.ItemValueError({"": _("There is no profile item with this name.")})
            continue
        try:
            cleaned[key] = definition.clean(raw)
        except item_registry.ItemValueError as exc:
            errors[key] = exc
    if errors:
        raise InvalidItemValues(errors)
    return cleaned


@dataclass
class _Write:
    source_kind: str
    agency: Agency | None
    application: AgencyApplication | None
    actor: User | None
    cause: str
    verified_at: datetime | None


@dataclass
class _Outcome:
    items: list[ProfileItem]  # every item named, in the order given
    changed: list[str]  # keys whose value changed
    rewritten: list[str]  # keys with a new history row: value or provenance changed


def _apply(*, person: Person, values: dict[str, str], write: _Write) -> _Outcome:
    """Write cleaned values, keeping the history of each item."""
    existing = {
        item.key: item
        for item in ProfileItem.objects.select_for_update().filter(person=person, key__in=list(values))
    }
    outcome = _Outcome(items=[], changed=[], rewritten=[])
    for key, value in values.items():
        item = existing.get(key)
        old_value = item.value if item is not None else ""
        if item is None:
            item = ProfileItem(person=person, key=key)
        same_value = item.pk is not None and old_value == value
        same_source = (
            item.pk is not None
            and item.source_kind == write.source_kind
            and item.agency_id == (write.agency.pk if write.agency else None)
        )
        if same_value and same_source:
            newer = write.verified_at and (item.verified_at is None or write.verified_at > item.verified_at)
            if newer:
                item.verified_at = write.verified_at
                item.application = write.application or item.application
                item.save(update_fields=["verified_at", "application", "updated_at"])
            outcome.items.append(item)
            continue
        item.value = value
        item.source_kind = write.source_kind
        item.agency = write.agency
        item.application = write.application
        item.verified_at = write.verified_at
        item.lookup_hash = item_lookup_hash(key, value)
        item.save()
        ProfileItemChange.objects.create(
            item=item,
            old_value=old_value,
            new_value=value,
            source_kind=write.source_kind,
            agency=write.agency,
            application=write.application,
            actor=write.actor,
            cause=write.cause,
        )
        outcome.items.append(item)
        outcome.rewritten.append(key)
        if not same_value:
            outcome.changed.append(key)
    return outcome


def _sync_person(*, person: Person, values: dict[str, str]) -> None:
    """The Person row and the login keep the copies of the identity that other code reads."""
    if "national_id" in values and values["national_id"] != person.national_id:
        id_hash = lookup_hash(values["national_id"], purpose=NATIONAL_ID_PURPOSE)
        if Person.objects.filter(national_id_hash=id_hash).exclude(pk=person.pk).exists():
            raise Conflict(_("This national ID number is already registered."), code="national_id_taken")
        person.national_id = values["national_id"]
        person.national_id_hash = id_hash
        person.save(update_fields=["national_id", "national_id_hash"])
    if "full_name" in values and person.user.full_name != values["full_name"]:
        person.user.full_name = values["full_name"]
        person.user.save(update_fields=["full_name"])


def _change_summary(item: ProfileItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "source": item.agency.code if item.agency is not None else ProfileItem.Source.DECLARED.value,
        "verified_at": item.verified_at.isoformat() if item.verified_at is not None else None,
    }


def _announce(*, person: Person, outcome: _Outcome, write: _Write) -> None:
    """Tell the receivers (the exchange's outbox) what changed, never the values."""
    if not outcome.changed:
        return
    profile_items_changed.send(
        sender=ProfileItem,
        person=person,
        changes=[_change_summary(item) for item in outcome.items if item.key in outcome.changed],
        cause=write.cause,
        actor=write.actor,
        agency=write.agency,
    )


@transaction.atomic
def profile_items_record(
    *,
    person: Person,
    values: dict[str, Any],
    agency: Agency,
    application: AgencyApplication | None = None,
    actor: User | None = None,
    verified_at: datetime | None = None,
) -> list[ProfileItem]:
    """An agency of record states verified values: all are saved, or none (422 with a message
    per item). The application that sent them, when given, must be the agency's, be an agency of
    record and be allowed the items."""
    return _record(
        person=person,
        values=values,
        agency=agency,
        application=application,
        actor=actor,
        verified_at=verified_at,
        cause=ProfileItemChange.Cause.AGENCY_UPDATE,
    )


def _record(
    *,
    person: Person,
    values: dict[str, Any],
    agency: Agency,
    application: AgencyApplication | None,
    actor: User | None,
    verified_at: datetime | None,
    cause: str,
) -> list[ProfileItem]:
    if application is not None:
        from civicore.registry.services import check_access

        if application.agency_id != agency.pk or not application.is_agency_of_record:
            raise PermissionDenied(
                _("This application may not record verified values."), code="not_agency_of_record"
            )
        check_access(application, items=list(values), purpose=None)
    cleaned = clean_item_values(values)
    person = Person.objects.select_for_update(of=("self",)).select_related("user").get(pk=person.pk)
    write = _Write(
        source_kind=ProfileItem.Source.AGENCY,
        agency=agency,
        application=application,
        actor=actor,
        cause=cause,
        verified_at=verified_at or timezone.now(),
    )
    _sync_person(person=person, values=cleaned)
    outcome = _apply(person=person, values=cleaned, write=write)
    if cause == ProfileItemChange.Cause.REGISTRATION:
        # A new person is not a change to anyone's copy: the history is the record, nothing more.
        return outcome.items
    if outcome.rewritten:
        audit.record(
            actor=actor or application,
            action="profile.record",
            subject=person,
            person=person,
            agency=agency,
            details={
                "changed": outcome.changed,
                "rewritten": outcome.rewritten,
                "cause": cause,
                "client_id": application.client_id if application else "",
            },
        )
    _announce(person=person, outcome=outcome, write=write)
    return outcome.items


def profile_item_record(
    *,
    person: Person,
    key: str,
    value: Any,
    agency: Agency,
    application: AgencyApplication | None = None,
    actor: User | None = None,
    verified_at: datetime | None = None,
) -> ProfileItem:
    """An agency of record states one verified value (see profile_items_record)."""
    return profile_items_record(
        person=person,
        values={key: value},
        agency=agency,
        application=application,
        actor=actor,
        verified_at=verified_at,
    )[0]


@transaction.atomic
def profile_item_declare(*, person: Person, key: str, value: Any) -> ProfileItem:
    """The citizen states a declarable item or corrects a contact detail. Identity items recorded
    by an agency (name, date of birth, national ID...) can never be overwritten this way."""
    try:
        definition = item_registry.get(key)
    except item_registry.UnknownItem as exc:
        raise ItemNotDeclarable(_("There is no profile item with this name.")) from exc
    if not definition.citizen_editable:
        raise ItemNotDeclarable(
            _("Only the agency that holds your %(item)s can change it.") % {"item": definition.label}
        )
    cleaned = clean_item_values({key: value})
    person = Person.objects.select_for_update(of=("self",)).select_related("user").get(pk=person.pk)
    current = ProfileItem.objects.select_related("agency").filter(person=person, key=key).first()
    if current is not None and current.value == cleaned[key]:
        return current
    if current is not None and current.agency is not None and not definition.correctable:
        raise ItemNotDeclarable(
            _("%(agency)s holds this item; ask them to correct it.") % {"agency": current.agency.name}
        )
    write = _Write(
        source_kind=ProfileItem.Source.DECLARED,
        agency=None,
        application=None,
        actor=person.user,
        cause=ProfileItemChange.Cause.CITIZEN_DECLARE,
        verified_at=None,
    )
    outcome = _apply(person=person, values=cleaned, write=write)
    audit.record(
        actor=person.user,
        action="profile.declare",
        subject=person,
        person=person,
        details={"changed": outcome.changed, "cause": write.cause},
    )
    _announce(person=person, outcome=outcome, write=write)
    return outcome.items[0]


@transaction.atomic
def person_register(
    *,
    user: User,
    national_id: str,
    full_name: str,
    date_of_birth: date,
    address: str,
    agency: Agency,
    verified_at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> Person:
    """Link a user to their national identity, as stated by `agency` (the population register),
    and record the verified profile items it holds."""
    national_id = "".join(national_id.split())
    id_hash = lookup_hash(national_id, purpose=NATIONAL_ID_PURPOSE)
    if Person.objects.filter(national_id_hash=id_hash).exists():
        raise NationalIdTaken(_("This national ID number is already registered."))
    values: dict[str, Any] = {
        "full_name": full_name,
        "date_of_birth": date_of_birth,
        "national_id": national_id,
        "address": address,
        "email": user.email,
        **(extra or {}),
    }
    cleaned = clean_item_values(values)
    person = Person.objects.create(
        user=user,
        national_id=cleaned["national_id"],
        national_id_hash=id_hash,
        # The agency of record vouches for the identity: verified from the start.
        assurance_level=Person.AssuranceLevel.VERIFIED,
        assurance_verified_at=verified_at or timezone.now(),
        assurance_verified_by=agency,
    )
    _record(
        person=person,
        values=cleaned,
        agency=agency,
        application=None,
        actor=None,
        verified_at=verified_at,
        cause=ProfileItemChange.Cause.REGISTRATION,
    )
    return person


@transaction.atomic
def person_self_register(*, user: User, national_id: str, full_name: str, phone: str = "") -> Person:
    """Sign-up: link a new account to the national ID number the citizen states, at assurance
    level 1. Nothing is verified yet, so every item is recorded as declared by the citizen.
    A number that someone else already holds is refused (NationalIdTaken) without saying who."""
    values: dict[str, Any] = {"national_id": national_id, "full_name": full_name, "email": user.email}
    if phone:
        values["phone"] = phone
    cleaned = clean_item_values(values)
    id_hash = lookup_hash(cleaned["national_id"], purpose=NATIONAL_ID_PURPOSE)
    if Person.objects.filter(national_id_hash=id_hash).exists():
        raise NationalIdTaken(national_id_taken_message())
    try:
        with transaction.atomic():
            person = Person.objects.create(
                user=user,
                national_id=cleaned["national_id"],
                national_id_hash=id_hash,
                assurance_level=Person.AssuranceLevel.SELF_REGISTERED,
            )
    except IntegrityError as exc:
        # Two sign-ups with the same number at once: the unique hash lets only one through.
        raise NationalIdTaken(national_id_taken_message()) from exc
    if user.full_name != cleaned["full_name"]:
        user.full_name = cleaned["full_name"]
        user.save(update_fields=["full_name"])
    write = _Write(
        source_kind=ProfileItem.Source.DECLARED,
        agency=None,
        application=None,
        actor=user,
        cause=ProfileItemChange.Cause.SELF_REGISTRATION,
        verified_at=None,
    )
    _apply(person=person, values=cleaned, write=write)
    audit.record(
        actor=user,
        action="person.self_register",
        subject=person,
        person=person,
        details={"assurance_level": person.assurance_level, "items": sorted(cleaned)},
    )
    return person


@transaction.atomic
def person_assurance_raise(
    *, person: Person, level: int, officer: Officer | None = None, agency: Agency | None = None
) -> Person:
    """Record that the person's identity was confirmed: by `officer`, who checked their identity
    card in person (the officer's agency vouches), or by `agency`, an agency of record that holds
    their identity. Exactly one of the two. Raising to the level the person already has, or
    lower, changes nothing; otherwise one audit entry names who confirmed it and how."""
    if level not in Person.AssuranceLevel.values:
        raise ValidationFailed(_("There is no such assurance level."), code="invalid_assurance_level")
    if (officer is None) == (agency is None):
        raise ValidationFailed(
            _("Name either the officer who checked the identity in person or the agency of record."),
            code="assurance_verifier_required",
        )
    if officer is not None:
        if not officer.active:
            raise PermissionDenied(_("Only active officers can verify an identity."), code="not_an_officer")
        if officer.user_id == person.user_id:
            raise PermissionDenied(
                _("Officers cannot verify their own identity."), code="assurance_self_verification"
            )
        agency = officer.agency
    assert agency is not None
    person = Person.objects.select_for_update().get(pk=person.pk)
    if person.assurance_level >= level:
        return person
    previous = person.assurance_level
    person.assurance_level = level
    person.assurance_verified_at = timezone.now()
    person.assurance_verified_by = agency
    person.save(update_fields=["assurance_level", "assurance_verified_at", "assurance_verified_by"])
    audit.record(
        actor=officer.user if officer is not None else agency,
        action="person.assurance_raise",
        subject=person,
        person=person,
        agency=agency,
        details={
            "from": previous,
            "to": level,
            "method": "in_person" if officer is not None else "agency_of_record",
            "officer_id": officer.pk if officer is not None else None,
        },
    )
    return person


def assurance_require(
    *, request: HttpRequest, person: Person, level: int, fresh_minutes: int | None = None
) -> None:
    """Refuse (AssuranceLevelTooLow) a person below `level`, then (FreshSecondFactorRequired) a
    session whose last second factor is older than `fresh_minutes`, when given. Both are 403s
    with a stable code for the API; portal views turn them into a page or a re-authentication."""
    if person.assurance_level < level:
        raise AssuranceLevelTooLow(
            _(
                "This service needs a verified identity (assurance level %(level)d). Your identity "
                "is self-registered: have it verified by an officer at a one-stop service desk, "
                "with your citizen identity card, or by the agency that holds your records."
            )
            % {"level": level},
            details={"required_level": level, "assurance_level": person.assurance_level},
        )
    if not fresh_minutes:
        return
    used_at = last_second_factor_at(request)
    if used_at is None or timezone.now() - used_at > timedelta(minutes=fresh_minutes):
        raise FreshSecondFactorRequired(
            _(
                "This service asks you to confirm it is you with your second factor (authenticator "
                "app, security key or passkey) if you have not used it in the last %(minutes)d minutes."
            )
            % {"minutes": fresh_minutes},
            details={"within_minutes": fresh_minutes},
        )


def assurance_require_for_service(
    *, request: HttpRequest, person: Person, version: ServiceVersion | None
) -> None:
    """assurance_require with what the service version's definition asks (assurance_level,
    fresh_second_factor_minutes)."""
    requirement = service_assurance(version)
    assurance_require(
        request=request,
        person=person,
        level=requirement.level,
        fresh_minutes=requirement.fresh_second_factor_minutes,
    )


def user_session_end(*, user: User, session_id: int, current_session_key: str | None) -> None:
    """End one of the user's other sessions (logging that browser out). Another user's session,
    or the current one, is not theirs to end here."""
    from allauth.usersessions.models import UserSession

    session = UserSession.objects.filter(pk=session_id, user=user).first()
    if session is None or session.session_key == current_session_key:
        raise NotFound(_("There is no such session."), code="session_not_found")
    _end_sessions(user=user, sessions=[session], scope="one")


def user_sessions_end_others(*, user: User, current_session_key: str | None) -> int:
    """End every session of the user but the current one; returns how many were ended."""
    from allauth.usersessions.models import UserSession

    others = [
        session
        for session in UserSession.objects.filter(user=user)
        if session.session_key != current_session_key
    ]
    _end_sessions(user=user, sessions=others, scope="others")
    return len(others)


def _end_sessions(*, user: User, sessions: list[UserSession], scope: str) -> None:
    with transaction.atomic():
        for session in sessions:
            session_ending.send(sender=User, user=user, session_key=session.session_key)
            session.end()
        if sessions:
            audit.record(
                actor=user,
                action="account.sessions_end",
                subject=user,
                details={"scope": scope, "count": len(sessions)},
            )


def person_find_by_national_id(national_id: str) -> Person | None:
    return person_find(key="national_id", value=national_id)


def api_token_create(*, user: User, name: str, lifetime: timedelta | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        token_hash=hashlib.sha256(secret.encode()).hexdigest(),
        prefix=secret[:12],
        expires_at=timezone.now() + lifetime if lifetime else None,
    )
    return token, secret


def _token_lookup_sql() -> str:
    """The token with its user and the user's person in one statement (column lists kept per process)."""
    return (
        f"SELECT {rowsql.columns(ApiToken, 't')}, {rowsql.columns(User, 'u')}, {rowsql.columns(Person, 'p')} "  # noqa: S608 - our tables
        f"FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id "
        f"LEFT JOIN {Person._meta.db_table} p ON p.user_id = u.id "
        "WHERE t.token_hash = %s AND t.revoked = %s"
    )


def api_token_authenticate(secret: str) -> User | None:
    """The active user a bearer token belongs to, or None: unknown, revoked or expired tokens and
    deactivated users are refused. Checked against the database on every request (revoking a
    token takes effect at once), with one plain statement rather than an ORM query."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    with rowsql.cursor() as cursor:
        cursor.execute(_token_lookup_sql(), [hashlib.sha256(secret.encode()).hexdigest(), False])
        row = cursor.fetchone()
    if row is None:
        return None
    token_end, user_end = rowsql.width(ApiToken), rowsql.width(ApiToken) + rowsql.width(User)
    token = rowsql.from_row(ApiToken, row[:token_end])
    user = rowsql.from_row(User, row[token_end:user_end])
    now = timezone.now()
    if token is None or user is None or not user.is_active or (token.expires_at and token.expires_at <= now):
        return None
    person = rowsql.from_row(Person, row[user_end:])
    # What select_related("user__person") leaves: user.person is the person, or raises when none.
    User._meta.get_field("person").set_cached_value(user, person)
    if person is not None:
        Person._meta.get_field("user").set_cached_value(person, user)
    token.user = user
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
