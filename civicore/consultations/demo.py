"""Demo data for consultations: one open consultation with a few ideas, votes and comments, and one
that is closed and answered with the agency's official response. Loading again adds nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from django.utils import timezone

from civicore.agencies.models import Agency, Officer
from civicore.consultations import services
from civicore.consultations.models import Consultation, Idea

OPEN_TITLE = "Cây xanh cho phố đi bộ quanh hồ"
ANSWERED_TITLE = "Giờ mở cửa bộ phận một cửa vào thứ Bảy"


def _manager(agency: Agency, make_user: Callable[[str, str], Any]) -> Officer:
    user = make_user(f"consultations.{agency.code}@demo.civicore.invalid", "Cán bộ tham vấn")
    officer, _created = Officer.objects.get_or_create(
        user=user, defaults={"agency": agency, "roles": ["consultation_manager"]}
    )
    return officer


def load(*, agency: Agency, make_user: Callable[[str, str], Any], citizens: Sequence[Any]) -> list[Any]:
    """Create the two demo consultations for `agency` (its consultation manager is made with
    `make_user`), with ideas, votes and comments by `citizens` (users with a citizen identity, at
    least two). Returns the manager's user, for the demo's list of logins."""
    manager = _manager(agency, make_user)
    if Consultation.objects.filter(agency=agency, title__in=[OPEN_TITLE, ANSWERED_TITLE]).exists():
        return [manager.user]
    today = timezone.localdate()
    names = ["Hoa sữa", "Người đi bộ", "Cư dân phường", "Bạn đọc"]

    answered = services.consultation_create(
        officer=manager,
        title=ANSWERED_TITLE,
        question="Bộ phận một cửa có nên mở cửa sáng thứ Bảy không?",
        description="Nhiều người đi làm trong tuần khó đến nộp hồ sơ trong giờ hành chính.",
        opens_on=today - dt.timedelta(days=60),
        closes_on=today - dt.timedelta(days=20),
    )
    services.consultation_publish(officer=manager, consultation=answered)
    # The demo's past consultation took its ideas while it was open: open it for today, then close.
    Consultation.objects.filter(pk=answered.pk).update(closes_on=today)
    answered.refresh_from_db()
    first = services.idea_post(
        user=citizens[0],
        consultation=answered,
        title="Mở cửa sáng thứ Bảy từ 7 giờ 30 đến 11 giờ 30",
        body="Người đi làm có thể nộp hồ sơ mà không phải xin nghỉ.",
        display_name=names[0],
    )
    services.vote_cast(user=citizens[1], idea=first)
    services.idea_post(
        user=citizens[1],
        consultation=answered,
        title="Cho đặt lịch hẹn trực tuyến",
        body="Đặt lịch trước để không phải chờ lâu.",
        display_name=names[1],
    )
    services.consultation_close(officer=manager, consultation=answered)
    Consultation.objects.filter(pk=answered.pk).update(closes_on=today - dt.timedelta(days=20))
    services.idea_set_status(
        officer=manager, idea=first, status=Idea.Status.ACCEPTED, note="Áp dụng từ tháng tới."
    )
    services.consultation_respond(
        officer=manager,
        consultation=answered,
        text="Cảm ơn các ý kiến đóng góp. Phần lớn người tham gia ủng hộ mở cửa sáng thứ Bảy.",
        actions="Bộ phận một cửa mở cửa sáng thứ Bảy từ 7 giờ 30 đến 11 giờ 30, bắt đầu từ tháng tới.",
    )

    opened = services.consultation_create(
        officer=manager,
        title=OPEN_TITLE,
        question="Nên trồng loại cây nào và đặt ghế ngồi ở đâu trên phố đi bộ?",
        description="Thành phố sẽ trồng thêm cây và đặt ghế dọc phố đi bộ trong năm nay.",
        opens_on=today - dt.timedelta(days=3),
        closes_on=today + dt.timedelta(days=27),
    )
    services.consultation_publish(officer=manager, consultation=opened)
    trees = services.idea_post(
        user=citizens[0],
        consultation=opened,
        title="Trồng cây sao đen và bằng lăng",
        body="Cây sao đen cho bóng mát, bằng lăng có hoa đẹp vào mùa hè.",
    )
    benches = services.idea_post(
        user=citizens[1],
        consultation=opened,
        title="Ghế ngồi dưới bóng cây, cách nhau 50 mét",
        body="Người lớn tuổi cần chỗ nghỉ khi đi dạo.",
    )
    for user in citizens[1:]:
        services.vote_cast(user=user, idea=trees)
    services.vote_cast(user=citizens[0], idea=benches)
    services.comment_post(user=citizens[1], idea=trees, body="Đồng ý, nhưng nên tránh cây dễ gãy cành.")
    return [manager.user]
