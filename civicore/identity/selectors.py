"""Reads of people, their verified data and how they logged in.

`session_amr` and `session_acr` describe the current login in OpenID Connect terms (RFC 8176
method references, Civicore's level-of-assurance URNs), from the authentication records allauth
keeps in the session for every password, code and second factor used in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch
from django.http import HttpRequest
from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.core import rowsql
from civicore.core.crypto import lookup_hash
from civicore.identity import items as item_registry
from civicore.identity.models import Person, ProfileItem, ProfileItemChange, User

if TYPE_CHECKING:
    from allauth.usersessions.models import UserSession

    from civicore.catalogue.models import ServiceVersion

NATIONAL_ID_PURPOSE = "national_id"
ACR_SELF_REGISTERED = "urn:civicore:loa:1"
ACR_VERIFIED = "urn:civicore:loa:2"
# Second factors that can be used to log in or re-authenticate; recovery codes only stand in.
SECOND_FACTOR_TYPES = ("totp", "webauthn")


def person_for_user(user: User) -> Person | None:
    """The user's person, or None; read once per user object (then `user.person` is it too), with
    one plain statement rather than an ORM query, as nearly every citizen page asks."""
    related = User._meta.get_field("person")
    if related.is_cached(user):
        cached: Person | None = related.get_cached_value(user)  # type: ignore[assignment]
        return cached
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT {rowsql.columns(Person, 'p')} FROM {Person._meta.db_table} p WHERE p.user_id = %s",  # noqa: S608
            [user.pk],
        )
        row = cursor.fetchone()
    person = rowsql.from_row(Person, row) if row is not None else None
    related.set_cached_value(user, person)
    if person is not None:
        Person._meta.get_field("user").set_cached_value(person, user)
    return person


def profile_items(person: Person) -> dict[str, ProfileItem]:
    return {item.key: item for item in person.items.select_related("agency")}


def profile_items_with_keys(person: Person, keys: Iterable[str]) -> dict[str, ProfileItem]:
    """The person's items among `keys`, each with its agency loaded, as `profile_items` gives
    them; one plain statement, and only those values are decrypted (filing pre-fills from it)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    item_width = rowsql.width(ProfileItem)
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT {rowsql.columns(ProfileItem, 'i')}, {rowsql.columns(Agency, 'a')} "  # noqa: S608 - ours
            f"FROM {ProfileItem._meta.db_table} i LEFT JOIN {Agency._meta.db_table} a ON a.id = i.agency_id "
            f"WHERE i.person_id = %s AND i.key IN ({', '.join(['%s'] * len(wanted))})",
            [person.pk, *wanted],
        )
        rows = cursor.fetchall()
    items = {}
    agency_field = ProfileItem._meta.get_field("agency")
    for row in rows:
        item = rowsql.from_row(ProfileItem, row[:item_width])
        if item is not None:
            agency_field.set_cached_value(item, rowsql.from_row(Agency, row[item_width:]))
            items[item.key] = item
    return items


def display_name(user: User) -> str:
    return user.full_name or user.email


def person_find(*, key: str, value: str) -> Person | None:
    """The person an identifying item (national_id, phone, e-mail) belongs to, by keyed hash.
    None when nobody, or more than one person, has that value."""
    definition = item_registry.get(key)
    if not definition.identifies:
        raise ValueError(f"{key!r} does not identify a person")
    if key == NATIONAL_ID_PURPOSE:
        return Person.objects.filter(
            national_id_hash=lookup_hash("".join(value.split()), purpose=NATIONAL_ID_PURPOSE)
        ).first()
    try:
        canonical = definition.clean(value)
    except item_registry.ItemValueError:
        return None
    matches = list(
        Person.objects.filter(
            items__key=key, items__lookup_hash=lookup_hash(canonical, purpose=key)
        ).distinct()[:2]
    )
    return matches[0] if len(matches) == 1 else None


def items_for_agency(*, person: Person, keys: list[str]) -> dict[str, ProfileItem]:
    return {
        item.key: item
        for item in ProfileItem.objects.filter(person=person, key__in=keys).select_related("agency")
    }


@dataclass
class HistoryRow:
    at: Any
    old: dict[str, Any] | None
    new: dict[str, Any]
    source_label: str
    declared: bool
    cause: str


@dataclass
class ProfileRow:
    """One line of the citizen's profile page, for every registered item, held or not."""

    definition: item_registry.ItemDefinition
    item: ProfileItem | None
    display: dict[str, Any] | None
    history: list[HistoryRow] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def declared(self) -> bool:
        return self.item is not None and self.item.is_declared

    @property
    def can_edit(self) -> bool:
        """The citizen may change it here: contact details always, declarable items while no
        agency of record holds them."""
        if self.definition.correctable:
            return True
        return self.definition.declarable and (self.item is None or self.item.is_declared)


def profile_page(*, person: Person) -> list[ProfileRow]:
    """The person's own profile with each item's provenance and history, in registry order.
    Three queries whatever the number of items and changes."""
    held = {
        item.key: item
        for item in ProfileItem.objects.filter(person=person)
        .select_related("agency")
        .prefetch_related(
            Prefetch(
                "changes",
                queryset=ProfileItemChange.objects.select_related("agency").order_by("-at", "-id"),
            )
        )
    }
    rows = []
    for definition in item_registry.all_items():
        item = held.get(definition.key)
        if item is None:
            rows.append(ProfileRow(definition=definition, item=None, display=None))
            continue
        history = [
            HistoryRow(
                at=change.at,
                old=definition.type.display(change.old_value) if change.old_value else None,
                new=definition.type.display(change.new_value),
                source_label=change.agency.name if change.agency else "",
                declared=change.source_kind == ProfileItem.Source.DECLARED,
                cause=change.get_cause_display(),
            )
            for change in item.changes.all()
        ]
        rows.append(
            ProfileRow(
                definition=definition,
                item=item,
                display=definition.type.display(item.value),
                history=history,
            )
        )
    return rows


@dataclass(frozen=True)
class AssuranceRequirement:
    """What a service asks of the citizen's login: an identity assurance level, and optionally a
    second factor used within the last `fresh_second_factor_minutes`."""

    level: int = Person.AssuranceLevel.SELF_REGISTERED
    fresh_second_factor_minutes: int | None = None


def service_assurance(version: ServiceVersion | None) -> AssuranceRequirement:
    """The requirement a service version's definition declares (`assurance_level`, default 1;
    `fresh_second_factor_minutes`, default none)."""
    definition = getattr(version, "definition", None) or {}
    fresh = definition.get("fresh_second_factor_minutes")
    return AssuranceRequirement(
        level=int(definition.get("assurance_level", Person.AssuranceLevel.SELF_REGISTERED)),
        fresh_second_factor_minutes=int(fresh) if fresh else None,
    )


def _authentication_records(request: HttpRequest) -> list[dict[str, Any]]:
    from allauth.account.authentication import get_authentication_records

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return []
    return [record for record in get_authentication_records(request, user) if isinstance(record, dict)]


def _webauthn_amr(authenticator_id: Any) -> str:
    """ "swk" for a passkey that may be synced between devices (backup eligible), else "hwk"."""
    from allauth.mfa.models import Authenticator

    authenticator = Authenticator.objects.filter(
        pk=authenticator_id, type=Authenticator.Type.WEBAUTHN
    ).first()
    if authenticator is None:
        return "hwk"
    try:
        data = authenticator.wrap().authenticator_data
    except Exception:
        # A stored credential we cannot parse says nothing either way.
        return "hwk"
    return "swk" if data.is_backup_eligible() else "hwk"


def session_amr(request: HttpRequest) -> list[str]:
    """Authentication method references (RFC 8176) for the factors used in this session's login
    and re-authentications: "pwd" password, "otp" authenticator-app or recovery code, "hwk"/"swk"
    security key or passkey (device-bound or synced), "user" the user verification a passkey
    login does, and "mfa" when factors of two kinds were used."""
    amr: list[str] = []
    kinds: set[str] = set()

    def add(value: str, kind: str) -> None:
        if value not in amr:
            amr.append(value)
        kinds.add(kind)

    for record in _authentication_records(request):
        method = record.get("method")
        if method == "password":
            add("pwd", "knowledge")
        elif method == "mfa":
            kind = record.get("type")
            if kind in ("totp", "recovery_codes"):
                add("otp", "possession")
            elif kind == "webauthn":
                add(_webauthn_amr(record.get("id")), "possession")
                if record.get("passwordless"):
                    # A passkey login needs user verification (PIN or biometrics) on the device.
                    add("user", "verification")
    if len(kinds) >= 2:
        amr.append("mfa")
    return amr


def session_acr(request: HttpRequest) -> str:
    """Civicore's level of assurance for this login: loa:2 when the person's identity is verified
    (assurance level 2) and they logged in with two factors, otherwise loa:1."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    person = person_for_user(user)
    verified = person is not None and person.assurance_level >= Person.AssuranceLevel.VERIFIED
    return ACR_VERIFIED if verified and "mfa" in session_amr(request) else ACR_SELF_REGISTERED


def last_second_factor_at(request: HttpRequest) -> datetime | None:
    """When a second factor (authenticator code, recovery code, security key or passkey) was last
    used in this session, at login or to re-authenticate."""
    times = [
        float(record["at"])
        for record in _authentication_records(request)
        if record.get("method") == "mfa" and isinstance(record.get("at"), int | float)
    ]
    if not times:
        return None
    return datetime.fromtimestamp(max(times), tz=timezone.get_current_timezone())


def has_second_factor(request: HttpRequest) -> bool:
    """This session's login or a re-authentication used a second factor (or a passkey)."""
    return last_second_factor_at(request) is not None


def second_factor_types(user: User) -> list[str]:
    """The second factors the user has set up, of SECOND_FACTOR_TYPES."""
    from allauth.mfa.models import Authenticator

    return sorted(
        set(
            Authenticator.objects.filter(user=user, type__in=SECOND_FACTOR_TYPES).values_list(
                "type", flat=True
            )
        )
    )


@dataclass
class SessionRow:
    """One of the user's active sessions, as the sessions page shows it."""

    id: int
    browser: str
    device: str
    ip: str
    started_at: datetime
    last_seen_at: datetime
    current: bool


_BROWSERS = [
    ("Edge", r"Edg(?:e|A|iOS)?/"),
    ("Opera", r"OPR/|Opera"),
    ("Samsung Internet", r"SamsungBrowser/"),
    ("Cốc Cốc", r"coc_coc_browser/"),
    ("Zalo", r"Zalo"),
    ("Firefox", r"Firefox/|FxiOS/"),
    ("Chrome", r"Chrome/|CriOS/|Chromium/"),
    ("Safari", r"Safari/"),
]
_SYSTEMS = [
    ("iPhone", r"iPhone"),
    ("iPad", r"iPad"),
    ("Android", r"Android"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux"),
]


def describe_user_agent(user_agent: str) -> tuple[str, str]:
    """(browser, device) in words a citizen recognises; empty when unknown."""
    browser = next((name for name, pattern in _BROWSERS if re.search(pattern, user_agent)), "")
    device = next((name for name, pattern in _SYSTEMS if re.search(pattern, user_agent)), "")
    return browser, device


def user_sessions(*, user: User, current_session_key: str | None) -> list[SessionRow]:
    """The user's sessions that are still valid, the current one first, then the most recently
    seen. Sessions that ended or expired are removed on the way."""
    from allauth.usersessions.models import UserSession

    rows: list[SessionRow] = []
    sessions: list[UserSession] = UserSession.objects.purge_and_list(user)
    for session in sessions:
        browser, device = describe_user_agent(session.user_agent)
        rows.append(
            SessionRow(
                id=session.pk,
                browser=browser,
                device=device,
                ip=session.ip,
                started_at=session.created_at,
                last_seen_at=session.last_seen_at,
                current=session.session_key == current_session_key,
            )
        )
    rows.sort(key=lambda row: (not row.current, -row.last_seen_at.timestamp()))
    return rows
