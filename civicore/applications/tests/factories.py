"""A small but complete e-service and helpers to file applications against it."""

from __future__ import annotations

import copy
import io
import itertools
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import AgencyFactory
from civicore.applications import services
from civicore.applications.models import Application
from civicore.catalogue.models import Service
from civicore.catalogue.services import service_load
from civicore.identity.models import Person

DEFINITION: dict[str, Any] = {
    "code": "test-birth-registration",
    "version": 1,
    "agency": "set-by-make_service",
    "name": {"vi": "Đăng ký khai sinh", "en": "Birth registration"},
    "summary": {"vi": "Đăng ký khai sinh cho trẻ.", "en": "Register a child's birth."},
    "fee": {"amount": 0, "currency": "VND"},
    "sla_working_days": 3,
    "form": {
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["applicant_full_name", "child_full_name", "child_date_of_birth", "child_gender"],
            "properties": {
                "applicant_full_name": {"type": "string", "minLength": 2, "maxLength": 100},
                "applicant_national_id": {"type": "string", "pattern": "^[0-9]{12}$"},
                "applicant_address": {"type": "string", "maxLength": 300},
                "child_full_name": {"type": "string", "minLength": 2, "maxLength": 100},
                "child_date_of_birth": {"type": "string", "format": "date"},
                "child_gender": {"type": "string", "enum": ["male", "female"]},
                "birth_weight_grams": {"type": "integer", "minimum": 300, "maximum": 7000},
            },
        },
        "fields": [
            {
                "name": "applicant_full_name",
                "label": {"vi": "Họ tên người yêu cầu", "en": "Your full name"},
                "widget": "text",
            },
            {
                "name": "applicant_national_id",
                "label": {"vi": "Số định danh", "en": "National ID number"},
                "widget": "text",
            },
            {"name": "applicant_address", "label": {"vi": "Địa chỉ", "en": "Address"}, "widget": "textarea"},
            {
                "name": "child_full_name",
                "label": {"vi": "Họ tên của trẻ", "en": "Child's full name"},
                "widget": "text",
            },
            {
                "name": "child_date_of_birth",
                "label": {"vi": "Ngày sinh", "en": "Date of birth"},
                "widget": "date",
            },
            {
                "name": "child_gender",
                "label": {"vi": "Giới tính", "en": "Sex"},
                "widget": "radio",
                "options": [
                    {"value": "male", "label": {"vi": "Nam", "en": "Male"}},
                    {"value": "female", "label": {"vi": "Nữ", "en": "Female"}},
                ],
            },
            {
                "name": "birth_weight_grams",
                "label": {"vi": "Cân nặng (gram)", "en": "Weight (grams)"},
                "widget": "number",
            },
        ],
    },
    "prefill": {
        "applicant_full_name": "full_name",
        "applicant_national_id": "national_id",
        "applicant_address": "address",
    },
    "documents": [
        {
            "code": "birth-certificate",
            "label": {"vi": "Giấy chứng sinh", "en": "Medical birth certificate"},
            "required": True,
            "types": ["application/pdf", "image/jpeg", "image/png"],
            "max_bytes": 1048576,
        }
    ],
    "workflow": {
        "states": ["submitted", "in_review", "info_requested", "approved", "rejected"],
        "transitions": [
            {"name": "claim", "from": ["submitted"], "to": "in_review", "role": "caseworker"},
            {"name": "request_info", "from": ["in_review"], "to": "info_requested", "role": "caseworker"},
            {"name": "provide_info", "from": ["info_requested"], "to": "in_review", "role": "applicant"},
            {"name": "approve", "from": ["in_review"], "to": "approved", "role": "caseworker"},
            {"name": "reject", "from": ["in_review"], "to": "rejected", "role": "caseworker"},
        ],
    },
    "result": {
        "title": {"vi": "Trích lục khai sinh", "en": "Birth registration extract"},
        "fields": [{"label": {"vi": "Họ và tên", "en": "Full name"}, "value": "{answers.child_full_name}"}],
    },
}

VALID_ANSWERS = {
    "child_full_name": "Nguyễn Thị Hoa",
    "child_date_of_birth": "2026-11-20",
    "child_gender": "female",
}

# The smallest well-formed PDF header and trailer: enough for content sniffing.
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


_service_numbers = itertools.count(1)


def make_service(agency: Agency | None = None, **overrides: Any) -> Service:
    """Load the definition through the catalogue, as an operator would, so it is validated."""
    definition = copy.deepcopy(DEFINITION)
    definition.update(overrides)
    agency = agency or AgencyFactory()
    definition["agency"] = agency.code
    definition["code"] = f"{definition['code']}-{next(_service_numbers)}"
    version = service_load(definition=definition)
    return version.service


def pdf_upload(name: str = "giay-chung-sinh.pdf", data: bytes = PDF_BYTES) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def make_submitted(person: Person, service: Service | None = None) -> Application:
    service = service or make_service()
    application = services.application_start(person=person, service=service)
    services.document_attach(application=application, requirement="birth-certificate", upload=pdf_upload())
    return services.application_submit(application=application, answers=dict(VALID_ANSWERS))


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    return buffer.getvalue()
