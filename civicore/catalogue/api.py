"""Public catalogue API: what e-services exist and everything a client needs to build their forms.

Public data, so no authentication. Texts come in both languages ({vi, en}) for clients to choose.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from civicore.catalogue import selectors
from civicore.catalogue.models import Procedure, Service
from civicore.catalogue.search import MAX_QUERY_CHARS
from civicore.core.pagination import paginate
from civicore.core.schemas import ErrorOut

router = Router(tags=["catalogue"])


class Text(Schema):
    vi: str
    en: str


class AgencyOut(Schema):
    code: str
    name: Text


class ListQuery(Schema):
    # Longer queries are cut to MAX_QUERY_CHARS by the search rather than refused.
    q: str = Field(
        "", description=f"Words to look for; accents optional; first {MAX_QUERY_CHARS} characters used."
    )
    cursor: str | None = Field(None, max_length=2000)
    limit: int = Field(20, ge=1, le=100)


class ServiceSummaryOut(Schema):
    code: str
    name: Text
    agency: AgencyOut
    fee: int = Field(description="In minor units of the currency (the dong has none).")
    currency: str
    sla_working_days: int
    online: bool
    version: int
    procedure: str | None


class ServiceListOut(Schema):
    items: list[ServiceSummaryOut]
    next_cursor: str | None


class FieldOptionOut(Schema):
    value: str | int
    label: Text


class FormFieldOut(Schema):
    name: str
    label: Text
    help: Text | None = None
    widget: str
    options: list[FieldOptionOut] | None = None
    prefill: str | None = Field(None, description="Verified profile item that fills this field, if any.")


class FormOut(Schema):
    schema_: dict[str, Any] = Field(..., alias="schema", description="JSON Schema (2020-12) of the answers.")
    fields: list[FormFieldOut]


class RequiredDocumentOut(Schema):
    """A document the form asks for (named apart from an application's uploaded documents, whose
    schema is also in the OpenAPI components)."""

    code: str
    label: Text
    help: Text | None = None
    required: bool
    types: list[str]
    max_bytes: int


class TransitionOut(Schema):
    name: str
    from_: list[str] = Field(..., alias="from")
    to: str
    role: str


class WorkflowOut(Schema):
    states: list[str]
    transitions: list[TransitionOut]


class ResultFieldOut(Schema):
    label: Text
    value: str = Field(description="Template: {reference} {applicant.full_name} {answers.X} {decided_at}.")


class ResultOut(Schema):
    title: Text
    fields: list[ResultFieldOut]


class ServiceDetailOut(ServiceSummaryOut):
    summary: Text
    form: FormOut
    prefill: dict[str, str]
    documents: list[RequiredDocumentOut]
    workflow: WorkflowOut
    result: ResultOut


class ProcedureSummaryOut(Schema):
    code: str
    name: str
    level: str
    field: str
    agency_name: str


class ProcedureListOut(Schema):
    items: list[ProcedureSummaryOut]
    next_cursor: str | None


class DocumentRequirementOut(Schema):
    name: str
    note: str = ""


class LegalBasisOut(Schema):
    number: str = ""
    title: str = ""


class ProcedureDetailOut(ProcedureSummaryOut):
    processing_time: str
    fee_text: str
    documents: list[DocumentRequirementOut]
    legal_basis: list[LegalBasisOut]
    result: str
    audience: str
    eligibility: str
    source: str
    services: list[str] = Field(description="Codes of the e-services that deliver this procedure online.")


def _service_summary(service: Service) -> dict[str, Any]:
    version = service.current_version
    assert version is not None  # noqa: S101 - selectors only list loaded services
    return {
        "code": service.code,
        "name": {"vi": service.name_vi, "en": service.name_en},
        "agency": {
            "code": service.agency.code,
            "name": {"vi": service.agency.name_vi, "en": service.agency.name_en},
        },
        "fee": version.fee_minor,
        "currency": version.currency,
        "sla_working_days": version.sla_working_days,
        "online": service.online,
        "version": version.number,
        "procedure": service.procedure.code if service.procedure else None,
    }


def _procedure_summary(procedure: Procedure) -> dict[str, Any]:
    return {
        "code": procedure.code,
        "name": procedure.name_vi,
        "level": procedure.level,
        "field": procedure.field,
        "agency_name": procedure.agency_name,
    }


@router.get(
    "/services", response={200: ServiceListOut, 422: ErrorOut}, auth=None, summary="List or search e-services"
)
def list_services(request: HttpRequest, filters: Query[ListQuery]) -> dict[str, Any]:
    rows, next_cursor = paginate(
        selectors.service_search(q=filters.q), cursor=filters.cursor, limit=filters.limit, order=("code",)
    )
    return {"items": [_service_summary(s) for s in rows], "next_cursor": next_cursor}


@router.get(
    "/services/{code}",
    response={200: ServiceDetailOut, 404: ErrorOut},
    auth=None,
    by_alias=True,
    summary="An e-service with its form",
)
def get_service(request: HttpRequest, code: str) -> dict[str, Any]:
    service = selectors.service_get(code=code)
    assert service.current_version is not None  # noqa: S101
    definition = service.current_version.definition
    prefill = definition.get("prefill", {})
    fields = [{**field, "prefill": prefill.get(field["name"])} for field in definition["form"]["fields"]]
    return {
        **_service_summary(service),
        "summary": {"vi": service.summary_vi, "en": service.summary_en},
        "form": {"schema": definition["form"]["schema"], "fields": fields},
        "prefill": prefill,
        "documents": definition.get("documents", []),
        "workflow": definition["workflow"],
        "result": definition["result"],
    }


@router.get(
    "/procedures",
    response={200: ProcedureListOut, 422: ErrorOut},
    auth=None,
    summary="List or search catalogue procedures",
)
def list_procedures(request: HttpRequest, filters: Query[ListQuery]) -> dict[str, Any]:
    rows, next_cursor = paginate(
        selectors.procedure_search(q=filters.q), cursor=filters.cursor, limit=filters.limit, order=("code",)
    )
    return {"items": [_procedure_summary(p) for p in rows], "next_cursor": next_cursor}


@router.get(
    "/procedures/{code}",
    response={200: ProcedureDetailOut, 404: ErrorOut},
    auth=None,
    summary="A catalogue procedure",
)
def get_procedure(request: HttpRequest, code: str) -> dict[str, Any]:
    procedure = selectors.procedure_get(code=code)
    return {
        **_procedure_summary(procedure),
        "processing_time": procedure.processing_time,
        "fee_text": procedure.fee_text,
        "documents": procedure.documents,
        "legal_basis": procedure.legal_basis,
        "result": procedure.result,
        "audience": procedure.audience,
        "eligibility": procedure.eligibility,
        "source": procedure.source,
        "services": list(selectors.service_list().filter(procedure=procedure).values_list("code", flat=True)),
    }
