"""Writes for applications: start (with pre-fill), save a draft, attach documents, submit.

Submitting is the one step that makes an application official: in one transaction it checks
the answers and documents, takes a reference number, opens the case, tells the citizen and
records the audit entry. Submitting twice files once. Filing through the API on PostgreSQL
writes all of that, with the Idempotency-Key, in a single statement (`_write_at_once`): the
busiest request of the platform, kept to three statements in all (see docs/benchmarks.md).

A person acting for a business (`organisation`) starts and files only while holding a current
`file` grant for the service, checked at each of those steps; the audit entries name both the
person and the business. Filing for oneself is unchanged and costs no extra query.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicore.applications.answers import clean_answers, validate_answers
from civicore.applications.models import Application, ApplicationDocument, ReferenceCounter
from civicore.audit import services as audit
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case, CaseEvent
from civicore.catalogue.models import Service
from civicore.catalogue.selectors import online_service
from civicore.core import rowsql
from civicore.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from civicore.core.gateways import malware_scanner
from civicore.core.models import IdempotencyRecord
from civicore.identity.models import Person
from civicore.identity.selectors import profile_items_with_keys
from civicore.insights import events as insights
from civicore.notify.models import Notification
from civicore.organisations import selectors as organisation_selectors
from civicore.organisations.models import Organisation
from civicore.organisations.services import acted_for


class InvalidAnswers(ValidationFailed):
    """Some answers are not valid."""

    code = "invalid_answers"


class MissingDocuments(ValidationFailed):
    """Required documents are missing."""

    code = "missing_documents"


class DocumentRejected(ValidationFailed):
    """The document was not accepted."""

    code = "document_rejected"


class NotEditable(Conflict):
    """The application has been submitted and can no longer be changed."""

    code = "not_editable"


def _prefill(person: Person, definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    mapping: dict[str, str] = definition.get("prefill") or {}
    items = profile_items_with_keys(person, mapping.values())
    answers: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    for field, key in mapping.items():
        item = items.get(key)
        if item is None:
            continue
        answers[field] = item.value
        # Both names are kept, so the page shows the source in whichever language is read later.
        with translation.override("vi"):
            source_vi = item.source_label
        with translation.override("en"):
            source_en = item.source_label
        provenance[field] = {
            "item": key,
            "source": source_vi,
            "source_en": source_en,
            "agency": item.agency.code if item.agency else None,
            "verified_at": item.verified_at.isoformat() if item.verified_at else None,
        }
    return answers, provenance


def service_for_application(code: str) -> Service:
    service = online_service(code)
    if service is None:
        raise NotFound(_("There is no online service with this code."), code="service_not_found")
    return service


def _consented_prefill(person: Person, definition: dict[str, Any], use_profile: bool) -> dict[str, Any]:
    """Model fields for a new application: pre-filled answers and the consent that allowed them,
    or nothing pre-filled when the citizen chose to type their answers."""
    if not use_profile:
        return {"answers": {}, "prefill": {}, "prefill_consented_at": None, "prefill_items": []}
    answers, provenance = _prefill(person, definition)
    return {
        "answers": answers,
        "prefill": provenance,
        "prefill_consented_at": timezone.now(),
        "prefill_items": sorted({p["item"] for p in provenance.values()}),
    }


def _require_file_grant(person: Person, organisation: Organisation | None, service: Service) -> None:
    if organisation is not None:
        organisation_selectors.require_grant(
            person=person, organisation=organisation, service=service, ability=organisation_selectors.FILE
        )


@transaction.atomic
def application_start(
    *, person: Person, service: Service, use_profile: bool = True, organisation: Organisation | None = None
) -> Application:
    """Open a draft, pre-filled from the citizen's verified profile when they agree to it (the
    consent is kept on the application); reuse their open draft. For a business, the person
    must hold a current `file` grant for the service."""
    version = service.current_version
    if version is None:
        raise NotFound(_("There is no online service with this code."), code="service_not_found")
    _require_file_grant(person, organisation, service)
    existing = (
        Application.objects.filter(
            applicant=person,
            service=service,
            service_version=version,
            status=Application.Status.DRAFT,
            organisation=organisation,
        )
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        return existing
    application = Application.objects.create(
        applicant=person,
        filed_by=person,
        organisation=organisation,
        service=service,
        service_version=version,
        **_consented_prefill(person, version.definition, use_profile),
    )
    insights.application_started(application)
    audit.record(
        actor=person.user,
        action="application.start",
        subject=application,
        person=person,
        details={"prefill_items": application.prefill_items, **acted_for(organisation)},
    )
    return application


def _editable(application: Application) -> None:
    if application.status != Application.Status.DRAFT:
        raise NotEditable(_("This application has been submitted and can no longer be changed."))


def _merge(application: Application, raw: dict[str, Any]) -> dict[str, Any]:
    """New answers over the old ones; pre-filled verified values always win."""
    definition = application.service_version.definition
    cleaned = clean_answers(definition["form"]["schema"], raw)
    merged = {**application.answers, **cleaned}
    for name in raw:
        if name not in cleaned and name in merged and name not in application.prefill:
            merged.pop(name)  # the citizen cleared the field
    for field in application.prefill:
        if field in application.answers:
            merged[field] = application.answers[field]
    return merged


@transaction.atomic
def application_save_draft(*, application: Application, answers: dict[str, Any]) -> Application:
    application = Application.objects.select_for_update().get(pk=application.pk)
    _editable(application)
    had_answers = insights.typed_answers(application.answers, application.prefill)
    application.answers = _merge(application, answers)
    application.save(update_fields=["answers", "updated_at"])
    insights.answers_saved(application, had_answers=had_answers)
    return application


def _check_upload(requirement: dict[str, Any], upload: UploadedFile) -> tuple[bytes, str]:
    limit = min(int(requirement.get("max_bytes") or settings.UPLOAD_MAX_BYTES), settings.UPLOAD_MAX_BYTES)
    if upload.size is None or upload.size > limit:
        raise DocumentRejected(
            _("The file is larger than %(mb)s MB.") % {"mb": round(limit / 1024 / 1024, 1)},
            code="file_too_large",
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise DocumentRejected(_("The file is too large."), code="file_too_large")
    if not data:
        raise DocumentRejected(_("The file is empty."), code="file_empty")
    found = malware_scanner().scan(data)
    if found:
        raise DocumentRejected(_("The file was refused because it looks harmful."), code="file_harmful")
    kind = filetype.guess(data)
    allowed = requirement.get("types") or ["application/pdf", "image/jpeg", "image/png"]
    if kind is None or kind.mime not in allowed:
        raise DocumentRejected(
            _("This type of file is not accepted. Upload a PDF, JPEG or PNG file."),
            code="file_type_not_allowed",
        )
    return data, kind.mime


def _requirement(application: Application, code: str) -> dict[str, Any]:
    for requirement in application.service_version.definition.get("documents", []):
        if requirement["code"] == code:
            return dict(requirement)
    raise DocumentRejected(_("This service does not ask for that document."), code="unknown_requirement")


@transaction.atomic
def document_attach(
    *, application: Application, requirement: str, upload: UploadedFile, during: str = "application"
) -> ApplicationDocument:
    """Check a supporting document by its content and store it privately.

    While a draft, a new upload replaces the previous one for the same requirement; during an
    information request it is added beside what was filed.
    """
    application = Application.objects.select_for_update().get(pk=application.pk)
    if during == "application":
        _editable(application)
    spec = _requirement(application, requirement)
    data, mime = _check_upload(spec, upload)
    if during == "application":
        insights.document_first_attached(application)
        application.documents.filter(requirement=requirement).delete()
    name = (upload.name or "document").replace("/", "_").replace("\\", "_")[-200:]
    document = ApplicationDocument(
        application=application,
        requirement=requirement,
        original_name=name,
        content_type=mime,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_during=during,
    )
    document.file.save(name, ContentFile(data), save=False)
    document.save()
    return document


@transaction.atomic
def document_remove(*, application: Application, document_id: str) -> None:
    application = Application.objects.select_for_update().get(pk=application.pk)
    _editable(application)
    deleted, _count = application.documents.filter(public_id=document_id).delete()
    if not deleted:
        raise NotFound(_("Document not found."))


def _reference_prefix(service: Service) -> str:
    return f"{service.code[:12].upper()}-{timezone.localtime().year}"


def _next_reference(service: Service) -> str:
    """Next number in the service's yearly sequence, in one statement so concurrent
    submissions hold the counter row only until their own commit."""
    prefix = _reference_prefix(service)
    table = ReferenceCounter._meta.db_table
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (prefix, last) VALUES (%s, 1) "  # noqa: S608 - table name is ours
            f"ON CONFLICT (prefix) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [prefix],
        )
        number = cursor.fetchone()[0]
    return f"{prefix}-{number:06d}"


def _check_complete(application: Application, present: set[str]) -> None:
    definition = application.service_version.definition
    errors = validate_answers(definition["form"]["schema"], application.answers)
    if errors:
        raise InvalidAnswers(_("Some answers need correcting."), details=errors)
    missing = [
        d["code"] for d in definition.get("documents", []) if d.get("required") and d["code"] not in present
    ]
    if missing:
        raise MissingDocuments(
            _("Upload the required documents before submitting."),
            details={code: _("Required.") for code in missing},
        )


def _filing_rows(
    application: Application, reference: str
) -> tuple[Case, CaseEvent, Notification, AuditEntry]:
    """What every filing writes once the application says SUBMITTED, not yet saved: the case
    with its first event, the receipt for the filer's inbox and the audit entry. `reference` is
    the application's reference number, or `_REFERENCE` where the database writes it in."""
    from civicore.cases.services import case_build
    from civicore.notify.services import notification_build

    case, opened = case_build(application=application)
    submitted = timezone.localtime(application.submitted_at)
    # Filing for oneself: the applicant acted (already loaded). For a business: whoever filed.
    filer = (
        application.applicant if application.filed_by_id == application.applicant_id else application.filed_by
    )
    receipt = notification_build(
        user=filer.user,
        subject=_("Application %(ref)s received") % {"ref": reference},
        body=_("We received your application for %(service)s on %(date)s. The agency will decide by %(due)s.")
        % {
            "service": application.service.name,
            "date": submitted.strftime("%d/%m/%Y %H:%M"),
            "due": timezone.localtime(case.due_at).strftime("%d/%m/%Y"),
        },
        link=f"/applications/{application.public_id}/",
    )
    entry = audit.entry(
        actor=filer.user,
        action="application.submit",
        subject_type=Application._meta.label_lower,
        subject_id=str(application.pk),
        person=application.applicant,
        agency=case.agency,
        details={
            "reference": reference,
            "version": application.service_version.number,
            "prefill_items": application.prefill_items,
            **acted_for(application.organisation if application.organisation_id else None),
        },
    )
    return case, opened, receipt, entry


def _file(application: Application, *, receipt_id: int | None = None) -> None:
    """Write what every filing writes (`_filing_rows`, and the receipt's e-mail job), in one
    statement with the application itself when it is new, in the caller's transaction; the
    application has its reference number. `receipt_id`: the receipt's id when the caller drew it
    along with the application's."""
    from civicore.notify.services import email_job, email_job_queued

    new = application._state.adding
    # The audit entry names the application and the e-mail job its notification: both need ids.
    wanted = [
        model for model, pk in ((Application, application.pk), (Notification, receipt_id)) if pk is None
    ]
    drawn = rowsql.next_ids(*wanted)
    if application.pk is None:
        application.pk = drawn.pop(0)
    case, opened, receipt, entry = _filing_rows(application, application.reference or "")
    receipt.pk = receipt_id if receipt_id is not None else drawn.pop(0)
    job = email_job(receipt)
    rowsql.insert(*([application] if new else []), case, opened, receipt, job, entry)
    email_job_queued(job)


# Stands for the reference number in the texts built before the database takes it.
_REFERENCE = "\ue000"
# The reference number from the counter's new value, as f"{prefix}-{number:06d}" writes it.
_REFERENCE_SQL = (
    "%s::text || '-' || CASE WHEN last < 1000000 THEN lpad(last::text, 6, '0') ELSE last::text END"
)


def _write_at_once(
    application: Application, *, key: str | None, scope: str, submit: bool, organisation: Organisation | None
) -> bool:
    """PostgreSQL: claim the Idempotency-Key, take the reference number (when filing) and write
    every row, all in one statement, which commits by itself (or with the caller's transaction).
    The service's counter row is locked from that statement to its commit only, not while rows
    are built. Returns False, having written nothing, when the key was already taken."""
    from civicore.notify.services import email_job, email_job_queued

    person = application.applicant
    before: list[tuple[str, str, list[Any]]] = []
    condition = ""
    if key:
        before.append(
            (
                "claim",
                f"{_CLAIM} RETURNING id",
                [key, person.pk, scope, str(application.public_id), timezone.now()],
            )
        )
        condition = "EXISTS (SELECT 1 FROM claim)"
    before.append(insights.filing_cte(application, only_if=condition))
    if not submit:
        started = audit.entry(
            actor=person.user,
            action="application.start",
            subject_type=Application._meta.label_lower,
            person=person,
            details={"prefill_items": application.prefill_items, **acted_for(organisation)},
        )
        started.subject_id = rowsql.Sql("%s::text", [rowsql.PkOf(application)])  # type: ignore[assignment]
        rowsql.insert(application, started, before=before, only_if=condition)
        if application.pk is None:
            return False
        started.subject_id = str(application.pk)
        return True

    counter = ReferenceCounter._meta.db_table
    prefix = _reference_prefix(application.service)
    rows = "SELECT %s, 1 FROM claim" if key else "VALUES (%s, 1)"
    before.append(
        (
            "number",
            f"INSERT INTO {counter} (prefix, last) {rows} ON CONFLICT (prefix) "  # noqa: S608 - our table
            f"DO UPDATE SET last = {counter}.last + 1 RETURNING {_REFERENCE_SQL} AS reference",
            [prefix, prefix],
        )
    )
    reference = "(SELECT reference FROM number)"
    case, opened, receipt, entry = _filing_rows(application, _REFERENCE)
    subject, details = receipt.subject, entry.details
    job = email_job(receipt)
    application.reference = rowsql.Sql(reference)  # type: ignore[assignment]
    receipt.subject = rowsql.Sql(f"replace(%s, %s, {reference})", [subject, _REFERENCE])  # type: ignore[assignment]
    details_param = AuditEntry._meta.get_field("details").get_db_prep_save(details, connection=connection)
    entry.details = rowsql.Sql(f"jsonb_set(%s, '{{reference}}', to_jsonb({reference}))", [details_param])
    entry.subject_id = rowsql.Sql("%s::text", [rowsql.PkOf(application)])  # type: ignore[assignment]
    returned = rowsql.insert(
        application,
        case,
        opened,
        receipt,
        job,
        entry,
        before=before,
        only_if=condition,
        returning=[reference],
    )
    if application.pk is None:
        return False
    # The objects as the rows now hold them, for the response and the inline job runner.
    application.reference = returned[0]
    receipt.subject = subject.replace(_REFERENCE, returned[0])
    entry.details = {**details, "reference": returned[0]}
    entry.subject_id = str(application.pk)
    job.payload = {"notification_id": receipt.pk}
    email_job_queued(job)
    return True


@transaction.atomic
def application_submit(
    *, application: Application, answers: dict[str, Any] | None = None, actor: Person | None = None
) -> Application:
    """File a draft: validate, number it, open its case. Submitting again changes nothing.

    `actor` is who files it (the applicant when not given). A business's draft is filed only by
    someone holding a current `file` grant for its service, who becomes its `filed_by`."""
    application = (
        Application.objects.select_for_update(of=("self",))
        .select_related("service_version", "service__agency", "applicant__user", "organisation")
        .get(pk=application.pk)
    )
    if application.status == Application.Status.SUBMITTED:
        return application
    if application.organisation_id is not None:
        filer = actor or application.applicant
        _require_file_grant(filer, application.organisation, application.service)
        application.filed_by = filer
    had_answers = insights.typed_answers(application.answers, application.prefill)
    if answers is not None:
        application.answers = _merge(application, answers)
    _check_complete(application, set(application.documents.values_list("requirement", flat=True)))
    application.reference = _next_reference(application.service)
    application.status = Application.Status.SUBMITTED
    application.submitted_at = timezone.now()
    application.save()
    _file(application)
    insights.application_submitted(application, saved_now=not had_answers)
    return application


def application_file(
    *,
    person: Person,
    service: Service,
    answers: dict[str, Any],
    submit: bool,
    idempotency_key: str | None,
    use_profile: bool = True,
    organisation: Organisation | None = None,
) -> tuple[Application, bool]:
    """API: start an application with answers and optionally submit it, in one call and one
    transaction. Returns the application and whether this call created it: a retry with the same
    Idempotency-Key returns the first call's application. For a business, the person must hold
    a current `file` grant for the service; keys are kept apart per business."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise ValidationFailed(
            _("The Idempotency-Key header must be 1 to 200 characters."), code="invalid_idempotency_key"
        )
    version = service.current_version
    if version is None:
        raise NotFound(_("There is no online service with this code."), code="service_not_found")
    _require_file_grant(person, organisation, service)
    scope = _IDEMPOTENCY_SCOPE if organisation is None else f"{_IDEMPOTENCY_SCOPE}:{organisation.pk}"
    application = Application(
        public_id=uuid.uuid4(),
        applicant=person,
        filed_by=person,
        organisation=organisation,
        service=service,
        service_version=version,
        **_consented_prefill(person, version.definition, use_profile),
    )
    application.answers = _merge(application, answers)
    if submit:
        try:
            _check_complete(application, present=set())
        except ValidationFailed:
            # A retry of a call that went through gets its application, as it would have had the
            # answers been checked after the key (the key is claimed only once they pass).
            if idempotency_key and (earlier := _idempotent_result(person, service, idempotency_key, scope)):
                return earlier, False
            raise
        application.status = Application.Status.SUBMITTED
        application.submitted_at = timezone.now()
    if connection.vendor == "postgresql":
        written = _write_at_once(
            application, key=idempotency_key, scope=scope, submit=submit, organisation=organisation
        )
    else:
        with transaction.atomic():
            written = _write_in_steps(
                application, key=idempotency_key, scope=scope, submit=submit, organisation=organisation
            )
    if not written:
        # The key was taken by a call that committed, so its record and application are there.
        earlier = _idempotent_result(person, service, idempotency_key or "", scope)
        if earlier is None:
            raise _key_reused()
        return earlier, False
    return application, True


def _write_in_steps(
    application: Application, *, key: str | None, scope: str, submit: bool, organisation: Organisation | None
) -> bool:
    """What `_write_at_once` does, a statement at a time, inside the caller's transaction (for
    databases other than PostgreSQL)."""
    person = application.applicant
    if key and not _claim_idempotency_key(person, key, application.public_id, scope):
        return False
    insights.application_filed(application)
    if submit:
        application.reference = _next_reference(application.service)
        _file(application)
        return True
    rowsql.reserve_ids(application)
    started = audit.entry(
        actor=person.user,
        action="application.start",
        subject=application,
        person=person,
        details={"prefill_items": application.prefill_items, **acted_for(organisation)},
    )
    rowsql.insert(application, started)
    return True


_IDEMPOTENCY_SCOPE = "application.file"


def _claim_idempotency_key(person: Person, key: str, public_id: uuid.UUID, scope: str) -> bool:
    """Record the key for this request in one statement; False when an earlier request holds it.

    Two concurrent requests with one key: the second waits on the first's row and, once that
    commits, finds the key taken; if the first rolled back, the second claims it.
    """
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"{_CLAIM} RETURNING id",
            [key, person.pk, scope, str(public_id), timezone.now()],
        )
        return cursor.fetchone() is not None


_CLAIM = (
    f"INSERT INTO {IdempotencyRecord._meta.db_table} (key, owner_id, scope, result_id, created_at) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (owner_id, scope, key) DO NOTHING"
)


def _idempotent_result(person: Person, service: Service, key: str, scope: str) -> Application | None:
    """The application an earlier call with this key filed, None when there was none."""
    record = IdempotencyRecord.objects.filter(owner_id=person.pk, scope=scope, key=key).first()
    if record is None:
        return None
    application = Application.objects.select_related("service", "service_version").get(
        public_id=record.result_id
    )
    if application.service_id != service.pk:
        raise _key_reused()
    return application


def _key_reused() -> Conflict:
    return Conflict(_("This Idempotency-Key was used for another request."), code="idempotency_key_reused")


__all__ = [
    "ApplicationError",
    "DocumentRejected",
    "InvalidAnswers",
    "MissingDocuments",
    "NotEditable",
    "application_file",
    "application_save_draft",
    "application_start",
    "application_submit",
    "document_attach",
    "document_remove",
]
