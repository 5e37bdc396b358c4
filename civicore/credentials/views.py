"""Public verification pages and the portal download of a signed result."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from civicore.core.errors import NotFound, PermissionDenied
from civicore.core.files import private_file_response
from civicore.credentials.forms import CodeForm, UploadForm
from civicore.credentials.models import ResultDocument
from civicore.credentials.selectors import (
    FeeUnpaid,
    Verification,
    document_lookup,
    document_verify,
    result_for_download,
)


def _page(
    request: HttpRequest,
    *,
    result: Verification | None = None,
    upload_form: UploadForm | None = None,
    code_form: CodeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "result": result,
        "upload_form": upload_form or UploadForm(),
        "code_form": code_form or CodeForm(),
    }
    return render(request, "credentials/verify.html", context, status=status)


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    if "code" in request.POST:
        code_form = CodeForm(request.POST)
        if not code_form.is_valid():
            return _page(request, code_form=code_form, status=400)
        return _page(
            request, result=document_lookup(serial=code_form.cleaned_data["code"]), code_form=code_form
        )
    upload_form = UploadForm(request.POST, request.FILES)
    if not upload_form.is_valid():
        return _page(request, upload_form=upload_form, status=400)
    upload = upload_form.cleaned_data["file"]
    return _page(request, result=document_verify(pdf=upload.read()))


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
