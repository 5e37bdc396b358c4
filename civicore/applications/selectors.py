"""Reads of applications. A citizen only ever finds their own: anyone else's is 'not found'.

Acting for a business, a person finds the business's applications for the services their current
grants cover (`view`, or `file` to change one); opening one someone else started is audited as
an access to that person's data, naming the business.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from civicore.applications.models import Application, ApplicationDocument
from civicore.audit import services as audit
from civicore.core.errors import NotFound
from civicore.identity.models import Person
from civicore.organisations import selectors as organisation_selectors
from civicore.organisations.models import Organisation
from civicore.organisations.services import acted_for


def applications_of(*, person: Person, organisation: Organisation | None = None) -> QuerySet[Application]:
    """The person's own applications; acting for a business, the business's applications for
    the services the person may see (none without a current grant)."""
    related = ("service", "service__agency", "service_version", "case")
    if organisation is None:
        return Application.objects.filter(applicant=person, organisation__isnull=True).select_related(
            *related
        )
    qs = Application.objects.filter(organisation=organisation).select_related(
        *related, "organisation", "filed_by__user"
    )
    services = organisation_selectors.visible_services(person=person, organisation=organisation)
    return qs if services is None else qs.filter(service_id__in=services)


def application_of(
    *, person: Person, public_id: Any, organisation: Organisation | None = None, change: bool = False
) -> Application:
    """One application the person may open (`change`: may also change), or 404; for a business,
    403 no_business_role when their grants no longer cover its service."""
    if organisation is None:
        application = applications_of(person=person).filter(public_id=public_id).first()
        if application is None:
            raise NotFound(_("Application not found."))
        return application
    application = (
        Application.objects.filter(organisation=organisation, public_id=public_id)
        .select_related("service", "service__agency", "service_version", "case", "organisation", "applicant")
        .first()
    )
    if application is None:
        raise NotFound(_("Application not found."))
    ability = organisation_selectors.FILE if change else organisation_selectors.VIEW
    organisation_selectors.require_grant(
        person=person, organisation=organisation, service=application.service, ability=ability
    )
    if application.applicant_id != person.pk:
        audit.record(
            actor=person.user,
            action="application.view",
            subject=application,
            person=application.applicant,
            details={"reference": application.reference, **acted_for(organisation)},
        )
    return application


def documents_of(application: Application) -> QuerySet[ApplicationDocument]:
    return application.documents.order_by("uploaded_at", "id")


def document_of_applicant(
    *, person: Person, public_id: Any, organisation: Organisation | None = None
) -> ApplicationDocument:
    """A document of the person's own application, or, acting for a business, of one of its
    applications whose service they may see (opening someone else's is audited)."""
    if organisation is None:
        document = (
            ApplicationDocument.objects.select_related("application")
            .filter(
                public_id=public_id, application__applicant=person, application__organisation__isnull=True
            )
            .first()
        )
    else:
        document = (
            ApplicationDocument.objects.select_related("application__service", "application__applicant__user")
            .filter(public_id=public_id, application__organisation=organisation)
            .first()
        )
    if document is None:
        raise NotFound(_("Document not found."))
    if organisation is not None:
        application = document.application
        organisation_selectors.require_grant(
            person=person,
            organisation=organisation,
            service=application.service,
            ability=organisation_selectors.VIEW,
        )
        if application.applicant_id != person.pk:
            audit.record(
                actor=person.user,
                action="document.view",
                subject=document,
                person=application.applicant,
                details={"requirement": document.requirement, **acted_for(organisation)},
            )
    return document


def form_fields(application: Application, errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The form's fields in order, with values, errors and provenance, ready for templates."""
    version = application.service_version
    definition = version.definition
    schema = definition["form"]["schema"]
    required = set(schema.get("required", []))
    fields = []
    for spec in definition["form"]["fields"]:
        name = spec["name"]
        provenance = application.prefill.get(name)
        if provenance and provenance.get("source_en") and (get_language() or "vi").startswith("en"):
            provenance = {**provenance, "source": provenance["source_en"]}
        fields.append(
            {
                "name": name,
                "id": f"field-{name}",
                "label": version.text(spec.get("label")),
                "help": version.text(spec.get("help")),
                "widget": spec.get("widget", "text"),
                "options": [(o["value"], version.text(o.get("label"))) for o in spec.get("options", [])],
                "value": application.answers.get(name, ""),
                "required": name in required,
                "error": (errors or {}).get(name, ""),
                "prefilled": provenance,
                "readonly": provenance is not None and name in application.answers,
            }
        )
    return fields


def document_requirements(application: Application) -> list[dict[str, Any]]:
    version = application.service_version
    uploaded: dict[str, list[ApplicationDocument]] = {}
    for document in documents_of(application):
        uploaded.setdefault(document.requirement, []).append(document)
    return [
        {
            "code": spec["code"],
            "label": version.text(spec.get("label")),
            "required": bool(spec.get("required")),
            "types": spec.get("types", []),
            "uploaded": uploaded.get(spec["code"], []),
        }
        for spec in version.definition.get("documents", [])
    ]
