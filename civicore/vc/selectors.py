"""Reading credentials: the citizen's wallet, claims as people read them, and verification
against the live trust list and status."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from civicore.agencies.models import Agency
from civicore.core.errors import NotFound
from civicore.vc import keys
from civicore.vc.models import Credential, Presentation, PresentationCheck
from civicore.verifier import jose as vjose
from civicore.verifier import sdjwt
from civicore.verifier.sdjwt import Verdict
from civicore.verifier.statuslist import INVALID, SUSPENDED, VALID

# Labels of the claims every credential has; a result line's label comes from its definition.
COMMON_LABELS = {
    "title": _("Document"),
    "title_en": _("Document (English title)"),
    "service": _("Service code"),
    "reference": _("Application reference"),
    "document_serial": _("Document serial number"),
    "decided_on": _("Decided on"),
    "holder_name": _("Holder's name"),
    "result": _("What the document says"),
    "date": _("Date"),
    "year": _("Year"),
}

# What each verdict means, for people.
VERDICT_TEXT = {
    "valid": _("Valid: issued by the agency named and unchanged since."),
    "malformed": _("Not a document this page can read."),
    "tampered": _("Tampered: the document was changed after it was signed."),
    "unknown_issuer": _("Unknown issuer: it was not signed by an agency on the trust list."),
    "key_not_valid": _("The signing key was not in use when this document says it was signed."),
    "key_compromised": _("The agency's signing key was compromised before this document was signed."),
    "expired": _("Expired."),
    "not_yet_valid": _("Not valid yet."),
    "revoked": _("Revoked by the issuing agency."),
    "suspended": _("Suspended by the issuing agency."),
    "status_unknown": _("Its status could not be checked."),
    "disclosure_mismatch": _("Tampered: it shows something the issuer did not sign."),
    "key_binding_missing": _("Not a presentation: the holder did not sign it."),
    "key_binding_invalid": _("Tampered: the holder's signature does not match."),
    "wrong_audience": _("This presentation was made for someone else."),
    "wrong_nonce": _("This presentation was made for another request."),
    "presentation_expired": _("The holder's sharing period has ended."),
    "withdrawn": _("The holder withdrew this link."),
}


def _lang() -> str:
    return "en" if (get_language() or "vi").startswith("en") else "vi"


def _status_from_db(uri: str, idx: int) -> int | None:
    """Our own status lists, read at the source: the verifier asks by list address and index."""
    prefix = f"{settings.SITE_URL}/api/v1/vc/status-lists/"
    if not uri.startswith(prefix):
        return None
    code = uri[len(prefix) :]
    status = (
        Credential.objects.filter(agency__code=code, status_index=idx)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        return VALID if Agency.objects.filter(code=code).exists() else None
    codes: dict[str, int] = {Credential.Status.REVOKED: INVALID, Credential.Status.SUSPENDED: SUSPENDED}
    return codes.get(str(status), VALID)


def verify(
    token: str | bytes, *, audience: str | None = None, nonce: str | None = None, **options: Any
) -> Verdict:
    """A credential or presentation checked against the live trust list and statuses."""
    return sdjwt.verify(
        token,
        trust=keys.trust_list(),
        now=int(time.time()),
        audience=audience,
        nonce=nonce,
        statuses=_status_from_db,
        **options,
    )


def looks_like_sd_jwt(text: str) -> bool:
    text = text.strip()
    return text.count(".") >= 2 and "~" in text and text[:2] == "ey"


def presentation_nonce(token: str) -> str | None:
    """The nonce a presentation's key-binding JWT names (unverified: only to find our record)."""
    parts = token.strip().split("~")
    if len(parts) < 2 or parts[-1].count(".") != 2:
        return None
    try:
        payload = json.loads(vjose.b64url_decode(parts[-1].split(".")[1]))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    except Exception:  # noqa: BLE001 - the verifier's MalformedError; nothing to record
        return None
    nonce = payload.get("nonce") if isinstance(payload, dict) else None
    return nonce if isinstance(nonce, str) and len(nonce) <= 64 else None


# --- The wallet -------------------------------------------------------------------------------


def wallet(user: Any) -> QuerySet[Credential]:
    return (
        Credential.objects.filter(person__user=user)
        .select_related("agency", "document")
        .annotate(shared=Count("presentations"))
        .order_by("-issued_at", "-id")
    )


def credential_of(user: Any, public_id: Any) -> Credential:
    credential = (
        Credential.objects.filter(person__user=user, public_id=public_id)
        .select_related("agency", "document", "document__application")
        .prefetch_related(
            Prefetch(
                "presentations",
                queryset=Presentation.objects.prefetch_related(
                    Prefetch("checks", queryset=PresentationCheck.objects.select_related("checker_agency"))
                ),
            )
        )
        .first()
    )
    if credential is None:
        raise NotFound("No such document", code="credential_not_found")
    return credential


def fee_unpaid(credential: Credential) -> bool:
    """Whether the result's fee, due before release, is still to be paid: until it is, the
    credential is neither handed out nor shared, as the PDF is not."""
    from civicore.payments import selectors as payment_selectors

    fee = payment_selectors.fee_status(application=credential.document.application)
    return fee is not None and fee.blocks_release


@dataclass(frozen=True)
class Claim:
    path: tuple[str, ...]
    label: str
    value: Any
    leaf: bool

    @property
    def key(self) -> str:
        return "/".join(self.path)

    @property
    def depth(self) -> int:
        return len(self.path) - 1


def _label(path: tuple[str, ...], labels: dict[str, Any]) -> str:
    name = path[-1]
    own = labels.get(name) if len(path) == 2 and path[0] == "result" else None
    if isinstance(own, dict):
        return str(own.get(_lang()) or own.get("vi") or name)
    common = COMMON_LABELS.get(name)
    return str(common) if common is not None else name


def claims(credential: Credential) -> list[Claim]:
    """The credential's disclosable claims, parents before children, labelled."""
    found = []
    for disclosure in sdjwt.disclosures(credential.token):
        path = tuple(disclosure.path)
        leaf = not isinstance(disclosure.value, dict)
        found.append(
            Claim(path=path, label=_label(path, credential.labels), value=disclosure.value, leaf=leaf)
        )
    return sorted(found, key=lambda claim: claim.path)


def disclosed_rows(
    values: dict[str, Any], labels: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[Claim]:
    """Disclosed claims of a verified presentation, flattened for a table."""
    rows: list[Claim] = []
    for name, value in values.items():
        path = (*prefix, str(name))
        if isinstance(value, dict):
            rows.append(Claim(path=path, label=_label(path, labels), value="", leaf=False))
            rows.extend(disclosed_rows(value, labels, path))
        else:
            rows.append(Claim(path=path, label=_label(path, labels), value=value, leaf=True))
    return rows


def shared(public_id: str) -> Presentation:
    presentation = (
        Presentation.objects.select_related("credential__agency", "credential__document")
        .filter(public_id=public_id)
        .first()
    )
    if presentation is None:
        raise NotFound("No such shared document", code="presentation_not_found")
    return presentation


_PLAIN_CLAIMS = frozenset({"iss", "vct", "iat", "exp", "nbf", "cnf", "status", "sub", "_sd_alg"})


def shown_claims(verdict: Verdict) -> dict[str, Any]:
    return {name: value for name, value in verdict.claims.items() if name not in _PLAIN_CLAIMS}
