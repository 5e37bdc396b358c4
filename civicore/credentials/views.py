"""Public verification pages and the portal download of a signed result."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_GET, require_http_methods

from civicore.core.errors import NotFound, PermissionDenied
from civicore.core.files import private_file_response
from civicore.credentials.forms import MAX_TOKEN_CHARS, CodeForm, TokenForm, UploadForm
from civicore.credentials.models import ResultDocument
from civicore.credentials.selectors import (
    FeeUnpaid,
    Verification,
    document_lookup,
    document_verify,
    result_for_download,
)
from civicore.vc import selectors as vc_selectors


def _page(
    request: HttpRequest,
    *,
    result: Verification | None = None,
    upload_form: UploadForm | None = None,
    code_form: CodeForm | None = None,
    token_form: TokenForm | None = None,
    credential: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "result": result,
        "credential": credential,
        "upload_form": upload_form or UploadForm(),
        "code_form": code_form or CodeForm(),
        "token_form": token_form or TokenForm(),
    }
    return render(request, "credentials/verify.html", context, status=status)


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    if "token" in request.POST:
        token_form = TokenForm(request.POST)
        if not token_form.is_valid():
            return _page(request, token_form=token_form, status=400)
        return _page(
            request, credential=_credential_result(token_form.cleaned_data["token"]), token_form=token_form
        )
    if "code" in request.POST:
        shared = _SHARED_LINK.search(request.POST.get("code", "")[:500])
        if shared:
            return redirect("vc:shared", public_id=shared.group(1))
        code_form = CodeForm(request.POST)
        if not code_form.is_valid():
            return _page(request, code_form=code_form, status=400)
        return _page(
            request, result=document_lookup(serial=code_form.cleaned_data["code"]), code_form=code_form
        )
    upload_form = UploadForm(request.POST, request.FILES)
    if not upload_form.is_valid():
        return _page(request, upload_form=upload_form, status=400)
    data = upload_form.cleaned_data["file"].read()
    if b"%PDF" not in data[:1024] and len(data) <= MAX_TOKEN_CHARS:
        text = data.decode("utf-8", errors="replace").strip()
        if vc_selectors.looks_like_sd_jwt(text):
            return _page(request, credential=_credential_result(text))
    return _page(request, result=document_verify(pdf=data))


_SHARED_LINK = re.compile(r"^\s*https?://[^/\s]+/shared/([A-Za-z0-9_-]{8,32})/?\s*$")


def _credential_result(token: str) -> dict[str, Any]:
    """A credential or presentation checked against the trust list and status lists. A
    presentation made for a shared link is checked as that link's (its audience and nonce)."""
    from civicore.vc import services as vc_services
    from civicore.vc.models import Presentation

    nonce = vc_selectors.presentation_nonce(token)
    presentation = Presentation.objects.filter(public_id=nonce).first() if nonce else None
    if presentation is not None and presentation.token == token:
        verdict = vc_selectors.verify(
            token, audience=vc_services.presentation_url(presentation), nonce=presentation.public_id
        )
    else:
        verdict = vc_selectors.verify(token)
    labels = presentation.credential.labels if presentation is not None else {}
    return {
        "verdict": verdict,
        "message": vc_selectors.VERDICT_TEXT.get(verdict.status, verdict.status),
        "issuer_name": (verdict.issuer_name or {}).get("en" if translation.get_language() == "en" else "vi"),
        "issued_at": dt.datetime.fromtimestamp(verdict.issued_at, tz=dt.UTC) if verdict.issued_at else None,
        "rows": vc_selectors.disclosed_rows(vc_selectors.shown_claims(verdict), labels) if verdict.ok else [],
    }


@require_GET
def verify_serial(request: HttpRequest, serial: uuid.UUID) -> HttpResponse:
    return _page(request, result=document_lookup(serial=str(serial)))


@login_required
@require_GET
def result_download(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    try:
        document = result_for_download(user=request.user, public_id=public_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except FeeUnpaid as exc:
        messages.warning(request, exc.message)
        return redirect("payments:pay", application_id=public_id)
    return pdf_response(document)


def pdf_response(document: ResultDocument) -> FileResponse:
    """The signed PDF as a download that browsers and proxies must not keep."""
    return private_file_response(
        document.file,
        filename=f"{document.application.reference or document.serial}.pdf",
        content_type="application/pdf",
    )
