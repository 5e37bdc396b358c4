from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from civicore.agencies.tests.factories import AgencyFactory
from civicore.reports.categories import DEFAULT_FILE, categories_load
from civicore.reports.demo import AGENCIES, EXISTING
from civicore.reports.models import ReportCategory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agencies():
    for code, *_names in AGENCIES:
        AgencyFactory(code=code)
    for code in EXISTING:
        AgencyFactory(code=code)


def test_loading_the_default_file_twice_is_idempotent(agencies):
    assert categories_load(DEFAULT_FILE) == (12, 0)
    ReportCategory.objects.filter(code="noise").update(name_en="changed")
    assert categories_load(DEFAULT_FILE) == (0, 12)
    assert ReportCategory.objects.count() == 12
    assert ReportCategory.objects.get(code="noise").name_en == "Noise"
    assert ReportCategory.objects.get(code="streetlight").agency.code == "chieu-sang-do-thi"


def test_the_command_refuses_a_bad_file_with_exit_code_2(tmp_path, agencies):
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories:\n  - code: x\n    name_vi: X\n    agency: no-such-agency\n", encoding="utf-8")
    with pytest.raises(CommandError) as excinfo:
        call_command("reports", "load-categories", str(bad))
    assert excinfo.value.returncode == 2 and "no-such-agency" in str(excinfo.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("categories: [ {code: x", encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("reports", "load-categories", str(broken))
    assert not ReportCategory.objects.exists()


def test_the_command_loads_the_file(capsys, agencies):
    call_command("reports", "load-categories", str(DEFAULT_FILE))
    assert "12 created" in capsys.readouterr().out


def test_the_demo_adds_categories_officers_and_reports():
    from civicore.core import demo
    from civicore.reports.models import Report

    logins = demo.load()
    assert ReportCategory.objects.count() == 12
    assert any(login.role.startswith("report handler (cap-nuoc)") for login in logins)
    statuses = set(Report.objects.values_list("status", flat=True))
    assert {"open", "in_progress", "resolved", "triage", "merged"} <= statuses
    assert Report.objects.count() >= 20
    admin_officer = next(
        login for login in logins if "ubnd-xa-an-binh" in login.role and "report_triager" in login.role
    )
    assert "ai_steward" in admin_officer.role
    demo.load()
    assert Report.objects.count() == len(__import__("civicore.reports.demo", fromlist=["REPORTS"]).REPORTS)
