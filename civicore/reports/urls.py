from django.urls import path

from civicore.reports import views

app_name = "reports"
urlpatterns = [
    path("report/", views.report_new, name="new"),
    path("report/nearby/", views.report_nearby, name="nearby"),
    path("report/<str:reference>/", views.report_status, name="status"),
    path("report/<str:reference>/me-too/", views.report_me_too, name="me_too"),
    path("report/<str:reference>/human-review/", views.report_human_review, name="human_review"),
    path("report/<str:reference>/rate/", views.report_rate, name="rate"),
    path("report/<str:reference>/photos/<uuid:photo_id>/", views.report_photo, name="photo"),
    path("my-reports/", views.my_reports, name="mine"),
    path("office/reports/", views.office_inbox, name="office_inbox"),
    path("office/reports/triage/", views.office_triage, name="office_triage"),
    path("office/reports/<int:report_id>/", views.office_detail, name="office_detail"),
    path("office/reports/<int:report_id>/photos/<uuid:photo_id>/", views.office_photo, name="office_photo"),
    path("office/reports/<int:report_id>/<slug:action>/", views.office_action, name="office_action"),
]
