"""Mounted at the site root: the OAuth endpoints and the citizen's consent dashboard."""

from django.urls import path

from civicore.consent import views

app_name = "consent"
urlpatterns = [
    path("oauth/authorize", views.authorize, name="authorize"),
    path("oauth/token", views.token, name="token"),
    path("my-data/consents/", views.consents, name="consents"),
    path("my-data/consents/<uuid:public_id>/revoke", views.revoke, name="revoke"),
]
