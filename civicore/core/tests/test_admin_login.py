import pytest
from django.test import Client


@pytest.mark.django_db
def test_admin_login_goes_through_the_second_factor_flow():
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
