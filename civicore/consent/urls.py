"""Mounted at the site root: the OAuth and OpenID Connect endpoints and the citizen's consent
dashboard. /.well-known/openid-configuration sits next to the JWKS in config/urls.py."""

from django.urls import path

from civicore.consent import views

app_name = "consent"
urlpatterns = [
    path("oauth/authorize", views.authorize, name="authorize"),
    path("oauth/token", views.token, name="token"),
    path("oauth/par", views.par, name="par"),
    path("oauth/userinfo", views.userinfo, name="userinfo"),
    path("oauth/revoke", views.token_revoke, name="token_revoke"),
    path("oauth/logout", views.end_session, name="logout"),
    path("my-data/consents/", views.consents, name="consents"),
    path("my-data/consents/<uuid:public_id>/revoke", views.revoke, name="revoke"),
]
