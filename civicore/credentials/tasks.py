"""Background issuing of result documents, queued when a case is approved."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from civicore.core.jobs import job
from civicore.credentials.services import result_issue


@job("credentials.issue")
def issue(application_id: int) -> None:
    """Issue the signed result, then tell the applicant it is ready.

    Jobs run at least once: issuing is idempotent, and a rerun after a failed notification
    sends the notification it missed.
    """
    from civicore.notify.services import notification_send
    from civicore.vc.services import credential_issue

    document = result_issue(application_id=application_id)
    # The credential beside the PDF: issued once, appended to the transparency log with it.
    credential_issue(document_id=document.pk)
    application = document.application
    user = application.applicant.user
    with translation.override(user.preferred_language or "vi"):
        notification_send(
            user=user,
            subject=_("Your result is ready: %(title)s") % {"title": document.title},
            body=_(
                "The signed result of your application %(reference)s has been issued. "
                "You can download it from your applications; anyone you show it to can check it "
                "at the verification page or by scanning its QR code. It is also in My documents, "
                "where you can share only the parts you choose."
            )
            % {"reference": application.reference or ""},
            link=reverse("results:download", kwargs={"public_id": application.public_id}),
        )
