"""Demo data for problem reports: the city's service companies, their report handlers, the
categories (data/categories.yaml) and about twenty reports around Hà Nội in every state.
Called by civicore.core.demo; loading again adds no second set of reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from civicore.agencies import permissions
from civicore.agencies.models import Agency, Officer, Team
from civicore.agencies.services import officer_provision
from civicore.reports import services
from civicore.reports.categories import categories_load
from civicore.reports.models import Report

AGENCIES = [
    ("chieu-sang-do-thi", "Công ty Chiếu sáng và Thiết bị đô thị", "Urban Lighting Company"),
    ("so-giao-thong-van-tai", "Sở Giao thông Vận tải", "Department of Transport"),
    ("moi-truong-do-thi", "Công ty Môi trường đô thị", "Urban Environment Company"),
    ("thoat-nuoc-do-thi", "Công ty Thoát nước đô thị", "Urban Drainage Company"),
    ("cap-nuoc", "Công ty Cấp nước sạch", "Water Supply Company"),
    ("cong-vien-cay-xanh", "Công ty Công viên cây xanh", "Parks and Trees Company"),
]
# Agencies of the demo commune that also handle reports (their officers get report_handler).
EXISTING = ("cong-an-xa-an-binh", "ubnd-xa-an-binh")
ADMIN_AGENCY = "ubnd-xa-an-binh"

# (category, description, lat, lon, address, final state)
REPORTS = [
    (
        "streetlight",
        "Đèn đường trước số 25 Tràng Tiền không sáng ba đêm nay.",
        21.0245,
        105.8555,
        "25 Tràng Tiền",
        "open",
    ),
    (
        "streetlight",
        "Cột đèn ở góc Hàng Bài nhấp nháy liên tục.",
        21.0223,
        105.8519,
        "Hàng Bài",
        "in_progress",
    ),
    (
        "streetlight",
        "The streetlight outside the bus stop on Lý Thường Kiệt is out.",
        21.0251,
        105.8470,
        "Lý Thường Kiệt",
        "resolved",
    ),
    (
        "road_damage",
        "Ổ gà lớn giữa làn xe máy trên phố Huế, rất nguy hiểm khi trời mưa.",
        21.0160,
        105.8510,
        "Phố Huế",
        "open",
    ),
    ("road_damage", "Mặt đường bị sụt lún trước chợ Hôm.", 21.0148, 105.8522, "Chợ Hôm", "overdue"),
    (
        "traffic_signal",
        "Đèn tín hiệu ở ngã tư Láng Hạ - Thái Hà chỉ còn đèn vàng.",
        21.0120,
        105.8190,
        "Ngã tư Láng Hạ",
        "in_progress",
    ),
    (
        "waste",
        "Rác thải chất đống ở đầu ngõ 58 Kim Mã hai ngày chưa thu gom.",
        21.0310,
        105.8240,
        "Ngõ 58 Kim Mã",
        "open",
    ),
    (
        "waste",
        "Rubbish bags left on the pavement near Hoàn Kiếm lake.",
        21.0288,
        105.8525,
        "Đinh Tiên Hoàng",
        "resolved",
    ),
    (
        "animals",
        "Có chó thả rông cắn người ở khu tập thể Thành Công.",
        21.0190,
        105.8150,
        "Thành Công",
        "open",
    ),
    (
        "flooding",
        "Cống thoát nước bị tắc, mưa là ngập đến đầu gối ở phố Nguyễn Khuyến.",
        21.0285,
        105.8405,
        "Nguyễn Khuyến",
        "open",
    ),
    ("flooding", "Ngập sâu sau mưa ở đường Trần Duy Hưng.", 21.0080, 105.7980, "Trần Duy Hưng", "reopened"),
    (
        "water_leak",
        "Ống nước sạch bị vỡ, nước chảy tràn ra đường Giải Phóng.",
        20.9950,
        105.8410,
        "Giải Phóng",
        "in_progress",
    ),
    (
        "trees",
        "Cây xà cừ nghiêng sắp đổ trên phố Phan Đình Phùng.",
        21.0405,
        105.8440,
        "Phan Đình Phùng",
        "open",
    ),
    (
        "trees",
        "A large branch fell and blocks half of the road.",
        21.0370,
        105.8350,
        "Quán Thánh",
        "resolved",
    ),
    (
        "illegal_parking",
        "Ô tô đỗ chắn cửa ngõ 12 Lê Lợi cả ngày.",
        21.0300,
        105.8560,
        "Ngõ 12 Lê Lợi",
        "open",
    ),
    ("noise", "Karaoke ồn ào sau 23 giờ ở số 7 Hàng Gai.", 21.0327, 105.8500, "7 Hàng Gai", "open"),
    (
        "sidewalk",
        "Quán ăn lấn chiếm hết vỉa hè, người đi bộ phải xuống lòng đường.",
        21.0335,
        105.8490,
        "Hàng Bông",
        "open",
    ),
    ("posters", "Quảng cáo rao vặt dán kín cột điện đầu phố.", 21.0340, 105.8470, "Hàng Bông", "resolved"),
    (
        None,
        "Có mùi lạ bốc lên từ miệng cống gần trường học, không rõ do đâu.",
        21.0270,
        105.8330,
        "Văn Miếu",
        "triage",
    ),
    (
        None,
        "Biển báo giao thông bị gãy đổ xuống đường sau cơn bão.",
        21.0200,
        105.8300,
        "Tôn Đức Thắng",
        "triage",
    ),
    (
        "streetlight",
        "Đèn đường trước số 27 Tràng Tiền cũng tắt.",
        21.0246,
        105.8556,
        "27 Tràng Tiền",
        "merged",
    ),
]


def _officers(make_user: Callable[[str, str], Any]) -> list[tuple[str, str, str]]:
    logins = []
    for code, name_vi, name_en in AGENCIES:
        agency, _created = Agency.objects.update_or_create(
            code=code, defaults={"name_vi": name_vi, "name_en": name_en, "level": Agency.Level.PROVINCE}
        )
        Team.objects.get_or_create(agency=agency, name="Đội hiện trường 1")
        email = f"reports.{code}@demo.civicore.invalid"
        user = make_user(email, f"Cán bộ {name_vi}")
        officer_provision(actor=None, user=user, agency=agency, roles=["report_handler"])
        logins.append((f"report handler ({code})", email, user.full_name))
    for code in EXISTING:
        for officer in Officer.objects.filter(agency__code=code, user__email__startswith="officer."):
            roles = {*officer.roles, "report_handler"}
            if code == ADMIN_AGENCY:
                roles |= {"report_triager", "ai_steward"}
            officer_provision(actor=None, user=officer.user, agency=officer.agency, roles=sorted(roles))
            logins.append(
                (f"officer ({code}): {', '.join(sorted(roles))}", officer.user.email, officer.user.full_name)
            )
    return logins


def _handler(report: Report) -> Officer | None:
    if report.agency_id is None:
        return None
    officers = Officer.objects.filter(agency_id=report.agency_id, active=True).order_by("id")
    return next((officer for officer in officers if officer.has_perm(permissions.REPORT_HANDLE)), None)


def _reports(reporters: list[Any]) -> None:
    if Report.objects.exists():
        return
    main = None
    for number, (code, text, lat, lon, address, state) in enumerate(REPORTS):
        reporter = reporters[number % len(reporters)] if reporters and number % 3 else None
        report = services.report_file(
            reporter=reporter,
            description=text,
            latitude=lat,
            longitude=lon,
            address=address,
            category_code=code,
            contact_name="" if reporter else "Người dân",
            language="en" if text.startswith(("The ", "A ", "Rubbish")) else "vi",
            client_key=f"demo:{number}",
        )
        if code == "streetlight" and main is None:
            main = report
        handler = _handler(report) if report.agency_id else None
        if handler is None:
            continue
        if state in ("in_progress", "resolved", "reopened"):
            services.report_assign(report=report, officer=handler, contractor="Đội hiện trường 1")
        if state in ("resolved", "reopened"):
            services.report_resolve(report=report, officer=handler, note="Đã xử lý xong tại hiện trường.")
        if state == "reopened" and report.reporter is not None:
            services.report_rate(
                report=report, user=report.reporter, resolved=False, stars=2, comment="Mưa to vẫn ngập."
            )
        if state == "merged" and main is not None:
            services.report_merge(report=report, into_reference=main.reference, officer=handler)
        if state == "overdue":
            past = timezone.now() - timedelta(days=20)
            Report.objects.filter(pk=report.pk).update(created_at=past, due_at=past + timedelta(days=9))


def load(*, make_user: Callable[[str, str], Any], reporters: list[Any]) -> list[tuple[str, str, str]]:
    """Agencies, officers, categories and reports; returns (role, e-mail, name) of the new logins."""
    logins = _officers(make_user)
    categories_load()
    _reports(reporters)
    return logins
