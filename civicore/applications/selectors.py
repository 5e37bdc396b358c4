"""Reads of applications. A citizen only ever finds their own: anyone else's is 'not found'."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from civicore.applications.models import Application, ApplicationDocument
from civicore.core.errors import NotFound
from civicore.identity.models import Person


def applications_of(*, person: Person) -> QuerySet[Application]:
    return Application.objects.filter(applicant=person).select_related(
        "service", "service__agency", "service_version", "case"
    )


def application_of(*, person: Person, public_id: Any) -> Application:
    application = applications_of(person=person).filter(public_id=public_id).first()
    if application is None:
        raise NotFound(_("Application not found."))
    return application


def documents_of(application: Application) -> QuerySet[ApplicationDocument]:
    return application.documents.order_by("uploaded_at", "id")


def document_of_applicant(*, person: Person, public_id: Any) -> ApplicationDocument:
    document = (
        ApplicationDocument.objects.select_related("application")
        .filter(public_id=public_id, application__applicant=person)
        .first()
    )
    if document is None:
        raise NotFound(_("Document not found."))
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
