"""Writes for people, their verified data and their API tokens.

Profile items change only through `profile_items_record` (an agency of record) and
`profile_item_declare` (the citizen). Both validate every value against the item registry, keep
the history, write one audit entry and send `profile_items_changed`, all in one transaction, and
only when something changed: recording the same value again just refreshes `verified_at`.
`person_register` records the first items with their history, without audit entry or signal.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.audit import services as audit
from civicore.core.crypto import lookup_hash
from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed
from civicore.identity import items as item_registry
from civicore.identity.models import ApiToken, Person, ProfileItem, ProfileItemChange, User
from civicore.identity.selectors import NATIONAL_ID_PURPOSE, person_find
from civicore.identity.signals import profile_items_changed

if TYPE_CHECKING:
    from civicore.agencies.models import Agency
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
        raise Conflict(_("This national ID number is already registered."), code="national_id_taken")
    values: dict[str, Any] = {
        "full_name": full_name,
        "date_of_birth": date_of_birth,
        "national_id": national_id,
        "address": address,
        "email": user.email,
        **(extra or {}),
    }
    cleaned = clean_item_values(values)
    person = Person.objects.create(user=user, national_id=cleaned["national_id"], national_id_hash=id_hash)
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


def api_token_authenticate(secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user", "user__person")
        .filter(token_hash=hashlib.sha256(secret.encode()).hexdigest(), revoked=False)
        .first()
    )
    now = timezone.now()
    if token is None or not token.user.is_active or (token.expires_at and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
