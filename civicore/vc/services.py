"""Issuing credentials beside results, changing their status, and sharing presentations.

Every issued result also becomes an SD-JWT VC signed with its agency's issuer key, every claim
selectively disclosable, bound to a key the platform keeps (encrypted) for the citizen, so that
a presentation proves it was made for one audience and until one moment. Issuing, revoking,
suspending and reinstating each append the document's hashes to the transparency log in the same
transaction, so no document changes in secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicore.agencies.permissions import RESULT_ISSUE
from civicore.agencies.selectors import officer_for_user
from civicore.audit.services import record
from civicore.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.credentials.models import ResultDocument
from civicore.credentials.services import ResultFields, result_fields
from civicore.transparency.models import EntryKind
from civicore.transparency.services import log_append
from civicore.vc import keys
from civicore.vc.models import Credential, Presentation, PresentationCheck
from civicore.verifier import jose as vjose
from civicore.verifier import sdjwt
from civicore.verifier.statuslist import INVALID, SUSPENDED, StatusList, sign_status_list_token

# Status lists start this large (2 bits an entry: 32 KiB before compression) and double when
# half full, so an index says little about when or how many credentials an agency issued.
STATUS_LIST_MIN_SIZE = 131_072
STATUS_LIST_TTL_SECONDS = 300
_STATUS_CACHE_SECONDS = 10.0
PRESENTATION_LIFETIMES = {
    "1h": dt.timedelta(hours=1),
    "1d": dt.timedelta(days=1),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
MAX_AUDIENCE = 200
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_PRINTED_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")

_status_cache: dict[int, tuple[float, str]] = {}


def forget_status_lists() -> None:
    """Drop this process's cached status list tokens (tests)."""
    _status_cache.clear()


def vct(service_code: str) -> str:
    """The credential type of a service's results."""
    return f"{settings.SITE_URL}/credentials/types/{service_code}"


def status_list_uri(agency: Any) -> str:
    return f"{settings.SITE_URL}/api/v1/vc/status-lists/{agency.code}"


def presentation_url(presentation: Presentation) -> str:
    return f"{settings.SITE_URL}{reverse('vc:shared', kwargs={'public_id': presentation.public_id})}"


def token_hash(issuer_signed_jwt: str) -> str:
    """What the transparency log holds for a credential: the SHA-256 of its issuer-signed JWT,
    which every presentation of it carries."""
    return hashlib.sha256(issuer_signed_jwt.encode("ascii")).hexdigest()


def _typed(value: Any, text: str) -> Any:
    """A result line as a claim: dates as {date, year} so that a year can be shown without the
    day; numbers and booleans as themselves; everything else as its printed text."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, dt.date):
        return {"date": value.isoformat(), "year": value.year}
    if isinstance(value, bool | int | float):
        return value
    match = _ISO_DATE.fullmatch(text)
    printed = _PRINTED_DATE.fullmatch(text)
    try:
        if match:
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
            return {"date": day.isoformat(), "year": day.year}
        if printed:
            day = dt.date(int(printed[3]), int(printed[2]), int(printed[1]))
            return {"date": day.isoformat(), "year": day.year}
    except ValueError:
        pass
    return text


def credential_claims(fields: ResultFields, *, document: ResultDocument, service_code: str) -> dict[str, Any]:
    decided = fields.decided_at or document.issued_at
    return {
        "title": fields.title_vi,
        "title_en": fields.title_en or fields.title_vi,
        "service": service_code,
        "reference": fields.reference,
        "document_serial": str(document.serial),
        "decided_on": _typed(decided, ""),
        "holder_name": fields.holder_name,
        "result": {row.claim: _typed(row.value, row.text) for row in fields.rows},
    }


def _status_capacity(agency_id: int) -> int:
    issued = Credential.objects.filter(agency_id=agency_id).count()
    size = STATUS_LIST_MIN_SIZE
    while issued * 2 >= size:
        size *= 2
    return size


def credential_issue(*, document_id: int) -> Credential:
    """The credential beside a result document, issued once (returns the existing one)."""
    existing = Credential.objects.filter(document_id=document_id).first()
    if existing is not None:
        return existing
    document = (
        ResultDocument.objects.select_related(
            "agency",
            "application__applicant__user",
            "application__service",
            "application__service_version",
            "application__case",
        )
        .filter(pk=document_id)
        .first()
    )
    if document is None:
        raise NotFound("No such result document", code="result_not_found")
    application = document.application
    fields = result_fields(application)
    claims = credential_claims(fields, document=document, service_code=application.service.code)
    agency = document.agency
    issuer_row = keys.issuer_key(agency)
    signer = keys.load_private(issuer_row)
    holder = ec.generate_private_key(ec.SECP256R1())
    holder_pem = keys.private_pem(holder)
    issued_at = timezone.now()
    capacity = _status_capacity(agency.pk)
    for _attempt in range(8):
        index = secrets.randbelow(capacity)
        token = sdjwt.issue(
            claims,
            issuer=keys.issuer_id(agency),
            vct=vct(application.service.code),
            key=signer,
            kid=issuer_row.kid,
            iat=int(issued_at.timestamp()),
            holder_jwk=vjose.public_jwk(holder),
            status={"idx": index, "uri": status_list_uri(agency)},
        )
        digest = token_hash(token.split("~", 1)[0])
        try:
            with transaction.atomic():
                credential = Credential.objects.create(
                    document=document,
                    person=application.applicant,
                    agency=agency,
                    issuer_key=issuer_row,
                    vct=vct(application.service.code),
                    labels={row.claim: {"vi": row.label_vi, "en": row.label_en} for row in fields.rows},
                    token=token,
                    holder_key=holder_pem,
                    sha256=digest,
                    status_index=index,
                    issued_at=issued_at,
                )
                log_append(entries=[(EntryKind.ISSUED, document.sha256), (EntryKind.ISSUED, digest)])
                record(
                    actor=None,
                    action="credential.issued",
                    subject=credential,
                    person=application.applicant,
                    agency=agency,
                    details={"serial": str(document.serial), "kid": issuer_row.kid},
                )
            return credential
        except IntegrityError:
            winner = Credential.objects.filter(document_id=document_id).first()
            if winner is not None:
                return winner
            # Another credential holds this status index: draw again.
    raise Conflict("No free status index was found; try again.", code="status_index_exhausted")


def credential_reissue(*, credential_id: int) -> Credential:
    """Sign a credential again with its agency's current key (after a key was compromised, say),
    keeping its claims, holder key and status index. The new token's hash is appended to the
    transparency log as re-issued; the old token stays verifiable only if its key does."""
    with transaction.atomic():
        credential = (
            Credential.objects.select_for_update(of=("self",))
            .select_related("agency", "issuer_key")
            .filter(pk=credential_id)
            .first()
        )
        if credential is None:
            raise NotFound("No such credential", code="credential_not_found")
        signer_row = keys.issuer_key(credential.agency)
        claims = _issued_claims(credential.token)
        holder = _holder(credential)
        token = sdjwt.issue(
            claims,
            issuer=keys.issuer_id(credential.agency),
            vct=credential.vct,
            key=keys.load_private(signer_row),
            kid=signer_row.kid,
            iat=int(timezone.now().timestamp()),
            holder_jwk=vjose.public_jwk(holder),
            status={"idx": credential.status_index, "uri": status_list_uri(credential.agency)},
        )
        credential.token = token
        credential.sha256 = token_hash(token.split("~", 1)[0])
        credential.issuer_key = signer_row
        credential.save(update_fields=["token", "sha256", "issuer_key"])
        log_append(entries=[(EntryKind.REISSUED, credential.sha256)])
        record(
            actor=None,
            action="credential.reissued",
            subject=credential,
            person=credential.person,
            agency=credential.agency,
            details={"kid": signer_row.kid},
        )
    return credential


def _issued_claims(token: str) -> dict[str, Any]:
    """The claims a credential was issued with, rebuilt from its disclosures."""
    claims: dict[str, Any] = {}
    for disclosure in sorted(sdjwt.disclosures(token), key=lambda d: len(d.path)):
        target = claims
        for name in disclosure.path[:-1]:
            target = target.setdefault(name, {})
        value = disclosure.value
        target[disclosure.path[-1]] = {} if isinstance(value, dict) else value
    return claims


# --- Status -----------------------------------------------------------------------------------

_TRANSITIONS = {
    # action: (allowed from, new status, log kind)
    "suspend": ({Credential.Status.VALID}, Credential.Status.SUSPENDED, EntryKind.SUSPENDED),
    "revoke": (
        {Credential.Status.VALID, Credential.Status.SUSPENDED},
        Credential.Status.REVOKED,
        EntryKind.REVOKED,
    ),
    "reinstate": ({Credential.Status.SUSPENDED}, Credential.Status.VALID, EntryKind.REINSTATED),
}


def credential_status_change(*, user: Any, public_id: Any, action: str, reason: str) -> Credential:
    """Suspend, revoke or reinstate a credential (and its PDF) for an officer holding
    `result.issue` in the issuing agency. The status list, the transparency log, the citizen's
    inbox and audit trail all learn of it."""
    if action not in _TRANSITIONS:
        raise ValidationFailed(_("Choose suspend, revoke or reinstate."), code="invalid_action")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Give the reason: the citizen will read it."), code="reason_required")
    if len(reason) > 500:
        raise ValidationFailed(_("Keep the reason under 500 characters."), code="reason_too_long")
    officer = officer_for_user(user)
    if officer is None:
        raise NotFound("No such credential", code="credential_not_found")
    allowed_from, new_status, kind = _TRANSITIONS[action]
    with transaction.atomic():
        credential = (
            Credential.objects.select_for_update(of=("self",))
            .select_related("document", "person__user", "agency")
            .filter(public_id=public_id)
            .first()
        )
        if credential is None:
            raise NotFound("No such credential", code="credential_not_found")
        if credential.agency_id != officer.agency_id:
            raise PermissionDenied("This document belongs to another agency", code="other_agency")
        if not officer.has_perm(RESULT_ISSUE):
            raise PermissionDenied(
                "Changing a document's status needs the result.issue permission", code="permission_required"
            )
        if credential.status not in allowed_from:
            raise Conflict(
                _("The document is %(status)s: it cannot be changed that way.")
                % {"status": credential.get_status_display().lower()},
                code="status_transition_refused",
            )
        now = timezone.now()
        credential.status = new_status
        credential.status_reason = reason
        credential.status_changed_at = now
        credential.save(update_fields=["status", "status_reason", "status_changed_at"])
        document = credential.document
        if new_status == Credential.Status.REVOKED:
            document.revoked_at = now
            document.save(update_fields=["revoked_at"])
        log_append(entries=[(kind, document.sha256), (kind, credential.sha256)])
        record(
            actor=user,
            action=f"credential.{new_status if action != 'reinstate' else 'reinstated'}",
            subject=credential,
            person=credential.person,
            agency=credential.agency,
            details={"serial": str(document.serial), "reason": reason},
        )
        _status_cache.pop(credential.agency_id, None)
        transaction.on_commit(lambda: _tell_citizen(credential, action=action, reason=reason))
    return credential


def _tell_citizen(credential: Credential, *, action: str, reason: str) -> None:
    from civicore.notify.services import notification_send

    user = credential.person.user
    with translation.override(getattr(user, "preferred_language", "") or "vi"):
        subjects = {
            "suspend": _("Your document was suspended: %(title)s"),
            "revoke": _("Your document was revoked: %(title)s"),
            "reinstate": _("Your document is valid again: %(title)s"),
        }
        notification_send(
            user=user,
            subject=subjects[action] % {"title": credential.document.title},
            body=_("The issuing agency gave this reason: %(reason)s") % {"reason": reason},
            link=reverse("vc:document", kwargs={"public_id": credential.public_id}),
        )


def status_list_token(agency: Any) -> str:
    """The agency's status list as a signed Token Status List JWT (cached briefly)."""
    cached = _status_cache.get(agency.pk)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    size = _status_capacity(agency.pk)
    changed = list(
        Credential.objects.filter(agency=agency)
        .exclude(status=Credential.Status.VALID)
        .values_list("status_index", "status")
    )
    size = max([size, *(index + 1 for index, _status in changed)])
    size += -size % 4
    statuses = StatusList(bits=2, size=size)
    for index, status in changed:
        statuses.set(index, INVALID if status == Credential.Status.REVOKED else SUSPENDED)
    row = keys.issuer_key(agency)
    now = int(time.time())
    token = sign_status_list_token(
        statuses,
        uri=status_list_uri(agency),
        iss=keys.issuer_id(agency),
        key=keys.load_private(row),
        kid=row.kid,
        iat=now,
        exp=now + 24 * 3600,
        ttl=STATUS_LIST_TTL_SECONDS,
    )
    _status_cache[agency.pk] = (time.monotonic() + _STATUS_CACHE_SECONDS, token)
    return token


# --- Presentations ----------------------------------------------------------------------------


def _holder(credential: Credential) -> ec.EllipticCurvePrivateKey:
    return keys.load_pem(credential.holder_key)


def disclosable_paths(credential: Credential) -> list[tuple[str, ...]]:
    """Every claim path the credential can disclose, parents before children."""
    return [tuple(d.path) for d in sdjwt.disclosures(credential.token)]


def presentation_create(
    *, user: Any, public_id: Any, paths: Iterable[Sequence[str]], audience: str, lifetime: str
) -> Presentation:
    """Share the chosen claims of one's own credential with `audience` until the lifetime ends."""
    credential = (
        Credential.objects.select_related("person", "document__application__service_version")
        .filter(public_id=public_id, person__user=user)
        .first()
    )
    if credential is None:
        raise NotFound("No such document", code="credential_not_found")
    from civicore.vc.selectors import fee_unpaid

    if fee_unpaid(credential):
        raise Conflict(_("Pay the application's fee to use your document."), code="fee_unpaid")
    if credential.status != Credential.Status.VALID:
        raise Conflict(
            _("This document is not valid now, so it cannot be shared."), code="credential_not_valid"
        )
    audience = " ".join((audience or "").split())
    if not audience:
        raise ValidationFailed(_("Say who you are sharing it with."), code="audience_required")
    if len(audience) > MAX_AUDIENCE:
        raise ValidationFailed(_("Keep the name under 200 characters."), code="audience_too_long")
    if lifetime not in PRESENTATION_LIFETIMES:
        raise ValidationFailed(_("Choose how long the link works."), code="invalid_lifetime")
    available = set(disclosable_paths(credential))
    chosen = {tuple(str(part) for part in path) for path in paths}
    if not chosen:
        raise ValidationFailed(_("Choose at least one thing to show."), code="nothing_chosen")
    unknown = chosen - available
    if unknown:
        raise ValidationFailed(_("That is not part of this document."), code="unknown_claim")
    now = timezone.now()
    expires_at = now + PRESENTATION_LIFETIMES[lifetime]
    presentation = Presentation(
        credential=credential,
        paths=sorted(list(path) for path in chosen),
        audience=audience,
        created_at=now,
        expires_at=expires_at,
        token="",
    )
    presentation.token = sdjwt.present(
        credential.token,
        keep=chosen,
        holder_key=_holder(credential),
        audience=presentation_url(presentation),
        nonce=presentation.public_id,
        iat=int(now.timestamp()),
        exp=int(expires_at.timestamp()),
    )
    with transaction.atomic():
        presentation.save()
        record(
            actor=user,
            action="presentation.created",
            subject=presentation,
            person=credential.person,
            details={"audience": audience, "claims": ["/".join(path) for path in sorted(chosen)]},
        )
    return presentation


def presentation_withdraw(*, user: Any, public_id: str) -> Presentation:
    presentation = Presentation.objects.filter(public_id=public_id, credential__person__user=user).first()
    if presentation is None:
        raise NotFound("No such shared link", code="presentation_not_found")
    if presentation.withdrawn_at is None:
        presentation.withdrawn_at = timezone.now()
        presentation.save(update_fields=["withdrawn_at"])
    return presentation


def presentation_check_record(
    *,
    presentation: Presentation,
    via: str,
    verdict: str,
    user: Any = None,
    agency: Any = None,
    label: str = "",
) -> PresentationCheck:
    return PresentationCheck.objects.create(
        presentation=presentation,
        via=via,
        verdict=verdict[:40],
        checker_user=user if getattr(user, "is_authenticated", False) else None,
        checker_agency=agency,
        checker_label=label[:200],
    )
