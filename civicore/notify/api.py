"""The caller's notifications over the API: list them newest first, mark one read."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from civicore.core.pagination import paginate
from civicore.core.schemas import errors
from civicore.notify import selectors, services
from civicore.notify.models import Notification

router = Router(tags=["notify"])


class NotificationOut(Schema):
    id: int
    subject: str
    body: str
    link: str
    created_at: datetime
    read_at: datetime | None

    @staticmethod
    def from_model(notification: Notification) -> NotificationOut:
        return NotificationOut(
            id=notification.pk,
            subject=notification.subject,
            body=notification.body,
            link=notification.link,
            created_at=notification.created_at,
            read_at=notification.read_at,
        )


class NotificationPage(Schema):
    items: list[NotificationOut]
    next_cursor: str | None


class NotificationListQuery(Schema):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=500)


@router.get(
    "", response={200: NotificationPage, **errors(422)}, summary="List my notifications, newest first"
)
def list_notifications(request: HttpRequest, query: Query[NotificationListQuery]) -> NotificationPage:
    rows, next_cursor = paginate(
        selectors.notifications_for(user=request.auth),  # type: ignore[attr-defined]
        cursor=query.cursor,
        limit=query.limit,
        order=("-created_at", "-id"),
    )
    return NotificationPage(items=[NotificationOut.from_model(n) for n in rows], next_cursor=next_cursor)


@router.post(
    "/{notification_id}/read",
    response={200: NotificationOut, **errors(404)},
    summary="Mark one of my notifications read",
)
def mark_read(request: HttpRequest, notification_id: int) -> NotificationOut:
    notification = services.notification_mark_read(
        user=request.auth,  # type: ignore[attr-defined]
        notification_id=notification_id,
    )
    return NotificationOut.from_model(notification)
