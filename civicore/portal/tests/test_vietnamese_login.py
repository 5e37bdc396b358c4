import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_login_page_speaks_vietnamese_by_default():
    html = Client().get("/accounts/login/").content.decode()
    assert "Mật khẩu" in html and "Quên mật khẩu?" in html
    assert "Forgot your password?" not in html


def test_login_page_in_english_when_asked():
    html = Client(HTTP_ACCEPT_LANGUAGE="en").get("/accounts/login/").content.decode()
    assert "Forgot your password?" in html
