from django.urls import path

from civicore.cases import views

app_name = "cases"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("cases/<int:case_id>/", views.case_detail, name="detail"),
    path("cases/<int:case_id>/documents/<uuid:document_id>/", views.case_document, name="document"),
    path("cases/<int:case_id>/<slug:action>/", views.case_action, name="action"),
]
