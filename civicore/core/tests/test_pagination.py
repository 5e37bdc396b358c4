from __future__ import annotations

import pytest

from civicore.agencies.models import Agency
from civicore.core.errors import ValidationFailed
from civicore.core.pagination import paginate

pytestmark = pytest.mark.django_db


def test_walks_every_row_once_and_stops():
    for i in range(7):
        Agency.objects.create(code=f"a{i}", name_vi=f"A{i}")
    seen, cursor = [], None
    while True:
        rows, cursor = paginate(Agency.objects.all(), cursor=cursor, limit=3, order=("code", "id"))
        seen += [r.code for r in rows]
        if cursor is None:
            break
    assert seen == [f"a{i}" for i in range(7)]


def test_tampered_cursor_is_refused():
    Agency.objects.create(code="x", name_vi="X")
    Agency.objects.create(code="y", name_vi="Y")
    _rows, cursor = paginate(Agency.objects.all(), cursor=None, limit=1, order=("code", "id"))
    with pytest.raises(ValidationFailed) as caught:
        paginate(Agency.objects.all(), cursor=cursor[:-2] + "zz", limit=1, order=("code", "id"))
    assert caught.value.code == "invalid_cursor"
