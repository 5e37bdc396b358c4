"""Seed the payments fault drill's database: one agency, one e-service with a fee, and per payer a
submitted application with an open VNPAY payment whose hosted page is ready.

Run by tests/test_payment_fault_drill.py with the stack's environment (DATABASE_URL, secrets and
VNPAY_* already set, migrations applied):
`python tests/payment_drill_setup.py OUT_JSON PAYMENTS WEB_BASE_URL`. Everything goes through the
services the application itself uses: citizens are registered, applications filed, payments
started and checked out. Writes, as JSON, one {reference, public_id, url} per payment, url being
the gateway page the payer is sent to.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import django  # noqa: E402
import yaml  # noqa: E402

django.setup()

from civicore.agencies.models import Agency  # noqa: E402
from civicore.applications.services import application_start, application_submit  # noqa: E402
from civicore.catalogue.services import agencies_load, service_load  # noqa: E402
from civicore.identity.models import User  # noqa: E402
from civicore.identity.services import person_register  # noqa: E402
from civicore.payments import services as payments  # noqa: E402
from civicore.payments.models import Payment  # noqa: E402

AGENCY_CODE = "drill-agency"
SERVICE_CODE = "drill-birth-registration"
FEE = {"amount": 50000, "currency": "VND", "due": "submission"}
SHIPPED_DEFINITION = REPO / "civicore" / "catalogue" / "data" / "services" / "birth-registration.yaml"
ANSWERS = {
    "relationship_to_child": "mother",
    "child_full_name": "Nguyễn Thị Hoa",
    "child_date_of_birth": "2025-11-20",
    "child_gender": "female",
    "child_place_of_birth": "Trạm y tế xã An Bình",
    "mother_full_name": "Trần Thị Lan",
}


def definition() -> dict[str, Any]:
    """The shipped birth registration, with a fee of its own and no upload to attach."""
    data: dict[str, Any] = yaml.safe_load(SHIPPED_DEFINITION.read_text(encoding="utf-8"))
    data.update(code=SERVICE_CODE, version=1, agency=AGENCY_CODE, documents=[], fee=FEE)
    data["name"] = {"vi": "Đăng ký khai sinh (diễn tập sự cố)", "en": "Birth registration (fault drill)"}
    return data


def main(out: Path, count: int, web_base: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", delete=False) as handle:
        handle.write(f"- {{code: {AGENCY_CODE}, name_vi: Cơ quan diễn tập, name_en: Drill agency}}\n")
    try:
        agencies_load(path=handle.name)
    finally:
        Path(handle.name).unlink()
    service = service_load(definition=definition()).service
    agency = Agency.objects.get(code=AGENCY_CODE)
    seeded = []
    for n in range(count):
        user = User.objects.create_user(
            username=f"payer{n}", email=f"payer{n}@example.test", password=None, full_name=f"Lê Văn {n}"
        )
        person = person_register(
            user=user,
            national_id=f"0792{n:08d}",
            full_name=f"Lê Văn {n}",
            date_of_birth=dt.date(1991, 3, 9),
            address=f"{n} Đường Trần Hưng Đạo, xã An Bình",
            agency=agency,
        )
        application = application_start(person=person, service=service)
        application = application_submit(application=application, answers=dict(ANSWERS))
        payment = payments.payment_start(
            application=application, payer=person, method=Payment.Method.GATEWAY, gateway="vnpay"
        )
        url = payments.payment_checkout(
            payment=payment,
            return_url=f"{web_base}/payments/{payment.public_id}/return/",
            payer_ip="127.0.0.1",
        )
        seeded.append({"reference": payment.reference, "public_id": str(payment.public_id), "url": url})
    out.write_text(json.dumps(seeded), encoding="utf-8")
    print(f"{len(seeded)} gateway payments for {SERVICE_CODE}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].rstrip("/"))
