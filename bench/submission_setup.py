"""Seed the benchmark database: one agency, one e-service without required documents, citizens.

Run by bench/submission.py with the benchmark's environment (DATABASE_URL and secrets already
set, migrations applied): `python bench/submission_setup.py TOKENS_FILE CITIZENS`. Everything is
created through the services the application itself uses, so the data looks like real data
(encrypted national IDs and profile items, hashed API tokens). Prints the service code.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import django  # noqa: E402
import yaml  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from civicore.agencies.models import Agency  # noqa: E402
from civicore.catalogue.services import agencies_load, service_load  # noqa: E402
from civicore.core.errors import ValidationFailed  # noqa: E402
from civicore.identity.models import User  # noqa: E402
from civicore.identity.services import api_token_create, person_register  # noqa: E402

AGENCY_CODE = "bench-agency"
SERVICE_CODE = "bench-birth-registration"


# The shipped birth-registration service, as citizens use it, with two changes: its own code and
# agency, and no required upload, so that one API call files one application.
SHIPPED_DEFINITION = REPO / "civicore" / "catalogue" / "data" / "services" / "birth-registration.yaml"


def definition() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED_DEFINITION.read_text(encoding="utf-8"))
    data.update(code=SERVICE_CODE, version=1, agency=AGENCY_CODE, documents=[])
    data["name"] = {"vi": "Đăng ký khai sinh (đo hiệu năng)", "en": "Birth registration (benchmark)"}
    return data


def main(tokens_path: Path, citizens: int) -> None:
    # agencies_load reads YAML; a one-line file keeps the agency going through its service.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", delete=False) as handle:
        handle.write(f"- {{code: {AGENCY_CODE}, name_vi: Cơ quan đo hiệu năng, name_en: Benchmark agency}}\n")
    try:
        agencies_load(path=handle.name)
    finally:
        Path(handle.name).unlink()
    try:
        service_load(definition=definition())
    except ValidationFailed as exc:
        # The definition format may have moved on; say what no longer fits.
        raise SystemExit(f"The benchmark's service definition is not valid: {exc.details}") from exc

    population_register = Agency.objects.get(code=AGENCY_CODE)
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
                agency=population_register,
            )
            _token, secret = api_token_create(user=user, name="benchmark")
            secrets.append(secret)
    tokens_path.write_text("\n".join(secrets) + "\n", encoding="utf-8")
    print(SERVICE_CODE)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
