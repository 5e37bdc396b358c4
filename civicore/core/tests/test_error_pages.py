import uuid

import pytest
from django.test import Client

from civicore.identity.tests.factories import make_citizen


@pytest.mark.django_db
def test_not_found_page_is_ours_and_translated():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_citizen().user)
    response = client.get(f"/applications/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    vietnamese = Client()
    vietnamese.force_login(make_citizen().user)
    assert "Không tìm thấy trang" in vietnamese.get(f"/applications/{uuid.uuid4()}/").content.decode()


@pytest.mark.django_db
def test_forbidden_page_is_ours():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_citizen().user)
    response = client.get("/office/")
    assert response.status_code == 403
    assert "Access denied" in response.content.decode()
