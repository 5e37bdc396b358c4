from django.urls import path

from civicore.applications import views

app_name = "applications"
urlpatterns = [
    path("", views.application_list, name="list"),
    path("start/<slug:code>/", views.application_start, name="start"),
    path("documents/<uuid:document_id>/", views.document_download, name="document"),
    path("<uuid:public_id>/", views.application_detail, name="detail"),
    path("<uuid:public_id>/receipt/", views.application_receipt, name="receipt"),
    path("<uuid:public_id>/documents/", views.document_upload, name="upload"),
    path(
        "<uuid:public_id>/documents/<uuid:document_id>/delete/", views.document_delete, name="document_delete"
    ),
    path("<uuid:public_id>/respond/", views.application_respond, name="respond"),
]
