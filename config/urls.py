from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from civicore.consent.views import openid_configuration
from civicore.core.views import healthz, jwks
from civicore.identity.office_views import verify_identity
from config.api import api

# Staff log in through the same password + second-factor flow as everyone else.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
# A request that loses the database answers 503 + Retry-After; any other failure, the 500 page.
handler500 = "civicore.core.views.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Early: gateways' server-to-server callbacks are the busiest route after /healthz.
    path("payments/", include("civicore.payments.urls")),
    path(".well-known/jwks.json", jwks, name="jwks"),
    path(".well-known/openid-configuration", openid_configuration, name="openid_configuration"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("services/", include("civicore.catalogue.urls")),
    path("applications/", include("civicore.applications.urls")),
    path("office/systems/", include("civicore.registry.urls")),
    path("office/officers/", include("civicore.agencies.urls")),
    path("office/verify-identity/", verify_identity, name="office_verify_identity"),
    path("business/", include("civicore.organisations.urls")),
    path("", include("civicore.exchange.urls")),  # /office/deliveries/, /my-data/changes/
    path("office/payments/", include("civicore.payments.urls_office")),
    path("", include("civicore.vc.urls")),  # /my-documents/, /shared/, /office/documents/
    path("office/", include("civicore.cases.urls")),
    path("verify/", include("civicore.credentials.urls")),
    path("transparency/", include("civicore.transparency.urls")),
    path("results/", include("civicore.credentials.urls_results")),
    path("inbox/", include("civicore.notify.urls")),
    path("", include("civicore.consent.urls")),
    path("my-data/", include("civicore.audit.urls")),
    path("my-profile/", include("civicore.identity.urls")),
    path("", include("civicore.reports.urls")),  # /report/, /my-reports/, /office/reports/, /reports/map/
    path("", include("civicore.routing.urls")),  # /office/routing/, /ai/models/
    path("", include("civicore.reports.urls_public")),  # /reports/map/, the public map and its feed
    path("", include("civicore.sensors.urls")),  # /office/sensors/
    path("", include("civicore.sensors.urls_public")),  # /environment/
    path("open311/v2/", include("civicore.open311.urls")),  # Open311 GeoReport v2
    path("", include("civicore.opendata.urls")),  # /data/, CKAN's /api/3/action/
    path("", include("civicore.core.urls")),  # /metrics
    path("", include("civicore.insights.urls")),  # /performance/, /office/performance/
    path("", include("civicore.feedback.urls")),  # /feedback/, /office/feedback/
    path("", include("civicore.consultations.urls")),  # /consultations/, /office/consultations/
    path("", include("civicore.portal.urls")),
]
