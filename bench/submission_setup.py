"""Seed the benchmark database: one agency, one e-service without required documents, citizens.

Run by bench/submission.py with the benchmark's environment (DATABASE_URL and secrets already
set, migrations applied): `python bench/submission_setup.py TOKENS_FILE CITIZENS`. Everything is
created through the services the application itself uses, so the data looks like real data
(encrypted national IDs and profile items, hashed API tokens). Prints the service code.
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from civicore.catalogue.services import agencies_load, service_load  # noqa: E402
from civicore.core.errors import ValidationFailed  # noqa: E402
from civicore.identity.models import User  # noqa: E402
from civicore.identity.services import api_token_create, person_register  # noqa: E402

AGENCY_CODE = "bench-agency"
SERVICE_CODE = "bench-birth-registration"


# Adapted from the test suite's birth-registration service (civicore/applications/tests/factories.py),
# kept here rather than imported so the benchmark does not move when a test fixture changes, and
# without its required upload: the API call alone must be able to submit, so every request files
# one application.
DEFINITION: dict[str, Any] = {
    "code": SERVICE_CODE,
    "version": 1,
    "agency": AGENCY_CODE,
    "name": {"vi": "Đăng ký khai sinh (đo hiệu năng)", "en": "Birth registration (benchmark)"},
    "summary": {"vi": "Dịch vụ dùng cho đo hiệu năng.", "en": "Service used by the benchmark."},
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
    # Pre-fill decrypts three profile items per submission, as a real filing does.
    "prefill": {
        "applicant_full_name": "full_name",
        "applicant_national_id": "national_id",
        "applicant_address": "address",
    },
    "documents": [],
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


def main(tokens_path: Path, citizens: int) -> None:
    # agencies_load reads YAML; a one-line file keeps the agency going through its service.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", delete=False) as handle:
        handle.write(f"- {{code: {AGENCY_CODE}, name_vi: Cơ quan đo hiệu năng, name_en: Benchmark agency}}\n")
    try:
        agencies_load(path=handle.name)
    finally:
        Path(handle.name).unlink()
    try:
        service_load(definition=copy.deepcopy(DEFINITION))
    except ValidationFailed as exc:
        # The definition format may have moved on; say what no longer fits.
        raise SystemExit(f"The benchmark's service definition is not valid: {exc.details}") from exc

    secrets = []
    with transaction.atomic():  # one commit for the pool instead of one per citizen
        for n in range(citizens):
            # No password: hashing 200 passwords would dominate set-up, and the API uses tokens.
            user = User.objects.create_user(
                username=f"bench{n}",
                email=f"bench{n}@example.test",
                password=None,
                full_name=f"Nguyễn Văn {n}",
            )
            person_register(
                user=user,
                national_id=f"0791{n:08d}",
                full_name=f"Nguyễn Văn {n}",
                date_of_birth=dt.date(1990, 5, 17),
                address=f"{n} Đường Lê Lợi, xã An Bình",
                source="National Population Database",
            )
            _token, secret = api_token_create(user=user, name="benchmark")
            secrets.append(secret)
    tokens_path.write_text("\n".join(secrets) + "\n", encoding="utf-8")
    print(SERVICE_CODE)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
