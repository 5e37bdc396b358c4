"""The citizen's wallet (/my-documents/), shared presentations (/shared/) and the officer's
status form for an issued document."""

from __future__ import annotations

import uuid
from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicore.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from civicore.vc import selectors, services
from civicore.vc.models import Credential, PresentationCheck
from civicore.vc.selectors import VERDICT_TEXT


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def wallet(request: HttpRequest) -> HttpResponse:
    rows = list(selectors.wallet(request.user))
    return _no_store(render(request, "vc/wallet.html", {"credentials": rows}))


def _qr_svg(url: str) -> str:
    qr = segno.make(url, error="m")
    return str(qr.svg_inline(scale=4, dark="#1b1b1b", light="#ffffff", title=_("QR code of the link")))


def _document_page(
    request: HttpRequest, credential: Credential, *, errors: dict[str, str] | None = None, status: int = 200
) -> HttpResponse:
    now = timezone.now()
    presentations = []
    for presentation in credential.presentations.all():
        url = services.presentation_url(presentation)
        active = presentation.withdrawn_at is None and presentation.expires_at > now
        presentations.append(
            {
                "row": presentation,
                "url": url,
                "active": active,
                "qr": _qr_svg(url) if active else "",
                "claims": [" › ".join(path) for path in presentation.paths],
                "checks": list(presentation.checks.all()),
            }
        )
    context: dict[str, Any] = {
        "credential": credential,
        "fee_unpaid": selectors.fee_unpaid(credential),
        "claims": selectors.claims(credential),
        "presentations": presentations,
        "lifetimes": [
            ("1h", _("One hour")),
            ("1d", _("One day")),
            ("7d", _("Seven days")),
            ("30d", _("Thirty days")),
        ],
        "errors": errors or {},
        "chosen": set(request.POST.getlist("claim")) if request.method == "POST" else set(),
        "audience": request.POST.get("audience", "") if request.method == "POST" else "",
        "lifetime": request.POST.get("lifetime", "1d") if request.method == "POST" else "1d",
    }
    return _no_store(render(request, "vc/document.html", context, status=status))


@login_required
@require_http_methods(["GET", "POST"])
def document(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    try:
        credential = selectors.credential_of(request.user, public_id)
    except NotFound:
        raise Http404 from None
    if request.method == "GET":
        return _document_page(request, credential)
    # Every missing answer is told at once; the service checks the rest.
    missing = {}
    if not request.POST.getlist("claim"):
        missing["claim"] = _("Choose at least one thing to show.")
    if not request.POST.get("audience", "").strip():
        missing["audience"] = _("Say who you are sharing it with.")
    if request.POST.get("lifetime", "") not in services.PRESENTATION_LIFETIMES:
        missing["lifetime"] = _("Choose how long the link works.")
    if missing:
        return _document_page(request, credential, errors=missing, status=400)
    try:
        presentation = services.presentation_create(
            user=request.user,
            public_id=public_id,
            paths=[key.split("/") for key in request.POST.getlist("claim")[:200]],
            audience=request.POST.get("audience", "")[:1000],
            lifetime=request.POST.get("lifetime", ""),
        )
    except Conflict as exc:
        return _document_page(request, credential, errors={"claim": exc.message}, status=409)
    except ApplicationError as exc:
        field = {
            "audience_required": "audience",
            "audience_too_long": "audience",
            "invalid_lifetime": "lifetime",
        }.get(exc.code, "claim")
        return _document_page(request, credential, errors={field: exc.message}, status=400)
    messages.success(
        request,
        _("The link is ready. Give it, or its QR code, to %(audience)s.")
        % {"audience": presentation.audience},
    )
    return redirect(f"{request.path}#shared-{presentation.public_id}")


@login_required
@require_GET
def credential_download(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    try:
        credential = selectors.credential_of(request.user, public_id)
    except NotFound:
        raise Http404 from None
    if selectors.fee_unpaid(credential):
        messages.warning(request, _("Pay the application's fee to use your document."))
        return redirect("payments:pay", application_id=credential.document.application.public_id)
    response = HttpResponse(credential.token, content_type="application/dc+sd-jwt")
    response["Content-Disposition"] = f'attachment; filename="{credential.public_id}.sd-jwt"'
    return _no_store(response)


@login_required
@require_POST
def presentation_withdraw(request: HttpRequest, public_id: str) -> HttpResponse:
    try:
        presentation = services.presentation_withdraw(user=request.user, public_id=public_id)
    except NotFound:
        raise Http404 from None
    messages.success(request, _("The link no longer works."))
    return redirect("vc:document", public_id=presentation.credential.public_id)


@require_GET
def shared(request: HttpRequest, public_id: str) -> HttpResponse:
    """What a holder shared, checked now: the verdict, the issuer and the chosen claims."""
    try:
        presentation = selectors.shared(public_id)
    except NotFound:
        raise Http404 from None
    if presentation.withdrawn_at is not None:
        code = "withdrawn"
        verdict = None
    else:
        verdict = selectors.verify(
            presentation.token,
            audience=services.presentation_url(presentation),
            nonce=presentation.public_id,
            require_key_binding=True,
        )
        code = verdict.status
    officer_agency = None
    if request.user.is_authenticated:
        from civicore.agencies.selectors import officer_for_user

        officer = officer_for_user(request.user)
        officer_agency = officer.agency if officer is not None else None
    services.presentation_check_record(
        presentation=presentation,
        via=PresentationCheck.Via.LINK,
        verdict=code,
        user=request.user,
        agency=officer_agency,
    )
    rows = (
        selectors.disclosed_rows(selectors.shown_claims(verdict), presentation.credential.labels)
        if verdict is not None and verdict.ok
        else []
    )
    context = {
        "presentation": presentation,
        "verdict": verdict,
        "code": code,
        "message": VERDICT_TEXT.get(code, code),
        "rows": rows,
        "issuer": presentation.credential.agency,
    }
    response = render(request, "vc/shared.html", context, status=410 if code == "withdrawn" else 200)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return _no_store(response)


@require_GET
def shared_download(request: HttpRequest, public_id: str) -> HttpResponse:
    """The presentation itself, to check offline with `civicore verify`."""
    try:
        presentation = selectors.shared(public_id)
    except NotFound:
        raise Http404 from None
    if presentation.withdrawn_at is not None:
        raise Http404
    response = HttpResponse(presentation.token, content_type="application/dc+sd-jwt")
    response["Content-Disposition"] = f'attachment; filename="{presentation.public_id}.sd-jwt"'
    return _no_store(response)


@login_required
@require_POST
def office_status(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Suspend, revoke or reinstate an issued document (officers holding result.issue)."""
    try:
        credential = services.credential_status_change(
            user=request.user,
            public_id=public_id,
            action=request.POST.get("action", ""),
            reason=request.POST.get("reason", "")[:2000],
        )
    except NotFound:
        raise Http404 from None
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(request.POST.get("next") or "vc:office_document", public_id=public_id)
    messages.success(
        request, _("The document is now: %(status)s.") % {"status": credential.get_status_display()}
    )
    return redirect("vc:office_document", public_id=public_id)


@login_required
@require_GET
def office_document(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    from civicore.agencies.permissions import CASE_VIEW, RESULT_ISSUE
    from civicore.agencies.selectors import officer_for_user

    officer = officer_for_user(request.user)
    credential = (
        Credential.objects.select_related("document__application", "agency")
        .filter(public_id=public_id)
        .first()
    )
    if officer is None or credential is None:
        raise Http404
    if credential.agency_id != officer.agency_id or not officer.has_perm(CASE_VIEW):
        raise DjangoPermissionDenied
    context = {"credential": credential, "can_change": officer.has_perm(RESULT_ISSUE)}
    return _no_store(render(request, "vc/office_document.html", context))
