"""The payer's download of a signed receipt. Thin: the selector decides who may have it."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from civicore.core.errors import NotFound
from civicore.core.files import private_file_response
from civicore.identity.selectors import person_for_user
from civicore.payments import receipts


@login_required
@require_GET
def receipt_download(request: HttpRequest, public_id: uuid.UUID) -> FileResponse:
    """The receipt PDF as an attachment that browsers and shared caches do not keep; anyone but
    the payer is told there is no such thing."""
    try:
        receipt = receipts.receipt_of_payer(person=person_for_user(request.user), public_id=public_id)  # type: ignore[arg-type]
    except NotFound as exc:
        raise Http404(exc.message) from None
    return private_file_response(
        receipt.file, filename=receipts.receipt_filename(receipt), content_type="application/pdf"
    )
