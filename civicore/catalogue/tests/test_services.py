from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from civicore.agencies.models import Agency
from civicore.catalogue.models import Procedure, Service, ServiceVersion
from civicore.catalogue.services import (
    AGENCIES_FILE,
    PROCEDURES_FILE,
    agencies_load,
    procedures_import,
    service_load,
)
from civicore.catalogue.tests.factories import SHIPPED, definition, load_demo_agencies
from civicore.core.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db


def test_first_load_creates_the_service_and_its_current_version():
    load_demo_agencies()
    version = service_load(definition=definition(version=1))
    service = Service.objects.get(code="birth-registration")
    assert service.current_version == version
    assert version.number == 1
    assert service.name_vi == "Đăng ký khai sinh"
    assert service.name_en == "Birth registration"
    assert service.agency.code == "ubnd-xa-an-binh"
    assert "dang ky khai sinh" in service.search_text
    assert "birth registration" in service.search_text
    assert "uy ban nhan dan xa an binh" in service.search_text


def test_identical_reload_returns_the_same_version():
    load_demo_agencies()
    first = service_load(definition=definition())
    again = service_load(definition=definition())
    assert again.pk == first.pk
    assert ServiceVersion.objects.count() == 1


def test_changed_definition_with_higher_version_becomes_current():
    load_demo_agencies()
    first = service_load(definition=definition(version=1))
    changed = definition(
        version=2, sla_working_days=3, name={"vi": "Đăng ký khai sinh (mới)", "en": "Register a birth"}
    )
    second = service_load(definition=changed)
    service = Service.objects.get(code="birth-registration")
    assert second.number == 2 and second.pk != first.pk
    assert service.current_version == second
    assert service.name_en == "Register a birth"
    assert "register a birth" in service.search_text
    # Applications filed under version 1 keep its exact form.
    first.refresh_from_db()
    assert first.sla_working_days == 1


def test_changed_definition_reusing_a_version_number_is_refused():
    load_demo_agencies()
    service_load(definition=definition())
    with pytest.raises(Conflict) as caught:
        service_load(definition=definition(sla_working_days=9))
    assert caught.value.code == "version_exists"
    assert Service.objects.get().current_version.sla_working_days == 1


def test_going_back_a_version_is_refused():
    load_demo_agencies()
    service_load(definition=definition(version=3))
    with pytest.raises(Conflict) as caught:
        service_load(definition=definition(version=2, sla_working_days=4))
    assert caught.value.code == "version_exists"
    assert Service.objects.get().current_version.number == 3


def test_invalid_definition_is_refused_with_every_error():
    load_demo_agencies()
    broken = definition(sla_working_days=0)
    broken["prefill"]["nope"] = "full_name"
    with pytest.raises(ValidationFailed) as caught:
        service_load(definition=broken)
    assert caught.value.code == "invalid_definition"
    assert caught.value.details == ["sla_working_days: 0 is less than the minimum of 1"]
    assert not Service.objects.exists()


def test_unknown_agency_and_procedure_are_refused():
    load_demo_agencies()
    with pytest.raises(ValidationFailed) as caught:
        service_load(definition=definition(agency="so-khong-ton-tai", procedure="9.999999"))
    assert caught.value.details == [
        "agency: no agency with code 'so-khong-ton-tai'",
        "procedure: no catalogue procedure with code '9.999999'",
    ]


def test_every_shipped_service_loads_and_links_its_procedure():
    load_demo_agencies()
    procedures_import()
    for path in SHIPPED:
        call_command("services", "load", str(path), stdout=StringIO())
    assert Service.objects.count() == len(SHIPPED)
    military = Service.objects.get(code="military-service-registration")
    assert military.procedure.code == "1.013133"
    assert military.agency.name_en == "An Binh Commune Military Command"
    business = Service.objects.get(code="household-business-registration")
    assert business.current_version.fee_minor == 100000


def test_procedure_import_is_idempotent(tmp_path):
    first = procedures_import()
    assert (first.created, first.updated) == (207, 0)
    military = Procedure.objects.get(code="1.013133")
    assert military.name_vi == "Thủ tục đăng ký nghĩa vụ quân sự lần đầu"
    assert military.level == "Cấp Xã"
    assert military.documents[0]["name"] == "Phiếu tự khai sức khỏe nghĩa vụ quân sự"
    assert "nghia vu quan su" in military.search_text

    second = procedures_import()
    assert (second.created, second.updated, second.unchanged) == (0, 0, 207)
    assert Procedure.objects.count() == 207

    data = json.loads(PROCEDURES_FILE.read_text(encoding="utf-8"))
    data["procedures"][0]["name_vi"] = "Tên đã sửa"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    third = procedures_import(path=changed)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 206)
    assert Procedure.objects.get(code=data["procedures"][0]["code"]).search_text.startswith(
        data["procedures"][0]["code"] + " ten da sua"
    )


def test_catalogue_import_command_reports_what_it_did():
    out = StringIO()
    call_command("catalogue", "import", stdout=out)
    assert "207 created" in out.getvalue()
    out = StringIO()
    call_command("catalogue", "import", stdout=out)
    assert "0 created, 0 updated, 207 unchanged" in out.getvalue()


def test_catalogue_import_command_refuses_a_file_that_is_not_a_catalogue(tmp_path):
    from django.core.management.base import CommandError

    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"something": "else"}', encoding="utf-8")
    with pytest.raises(CommandError, match="not a procedure catalogue"):
        call_command("catalogue", "import", "--file", str(bogus))
    with pytest.raises(CommandError, match="No such file"):
        call_command("catalogue", "import", "--file", str(tmp_path / "missing.json"))


def test_services_load_command_prints_outcome_per_file():
    load_demo_agencies()
    path = SHIPPED[0]
    out = StringIO()
    number = definition(path.stem)["version"]
    call_command("services", "load", str(path), stdout=out)
    assert f"created {path.stem} at version {number}" in out.getvalue()
    out = StringIO()
    call_command("services", "load", str(path), stdout=out)
    assert f"version {number} unchanged" in out.getvalue()


def test_services_load_command_fails_with_the_errors(tmp_path):
    load_demo_agencies()
    broken = tmp_path / "broken.yaml"
    broken.write_text("code: broken\nversion: one\n", encoding="utf-8")
    not_yaml = tmp_path / "not.yaml"
    not_yaml.write_text("code: [unclosed\n", encoding="utf-8")
    err = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "services", "load", str(broken), str(not_yaml), str(SHIPPED[0]), stdout=StringIO(), stderr=err
        )
    assert exited.value.code == 1
    text = err.getvalue()
    assert "version: 'one' is not of type 'integer'" in text
    assert "not.yaml: cannot read" in text
    assert "2 of 3 definitions not loaded" in text
    # The valid file in the same run is still loaded.
    assert Service.objects.filter(code=SHIPPED[0].stem).exists()


def test_agencies_load_upserts_by_code():
    assert agencies_load(path=AGENCIES_FILE) == 7
    Agency.objects.filter(code="so-tu-phap").update(name_en="Old name")
    assert agencies_load(path=AGENCIES_FILE) == 7
    assert Agency.objects.count() == 7
    justice = Agency.objects.get(code="so-tu-phap")
    assert justice.name_en == "Binh An Department of Justice"
    assert justice.level == Agency.Level.PROVINCE
    assert Agency.objects.get(code="ubnd-xa-an-binh").email == "mot-cua@an-binh.gov.invalid"


def test_catalogue_agencies_command(tmp_path):
    from django.core.management.base import CommandError

    out = StringIO()
    call_command("catalogue", "agencies", stdout=out)
    assert "Agencies: 7 loaded" in out.getvalue()
    bad = tmp_path / "bad.yaml"
    bad.write_text("- code: Not A Slug\n  name_vi: X\n", encoding="utf-8")
    with pytest.raises(CommandError, match="not an agencies list"):
        call_command("catalogue", "agencies", "--file", str(bad))
    assert Agency.objects.count() == 7
