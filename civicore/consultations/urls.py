from django.urls import path

from civicore.consultations import views

app_name = "consultations"
urlpatterns = [
    path("consultations/", views.consultation_list, name="list"),
    path("consultations/ideas/<int:idea_id>/vote/", views.idea_vote, name="vote"),
    path("consultations/ideas/<int:idea_id>/comments/", views.comment_new, name="comment"),
    path("consultations/ideas/<int:idea_id>/follow/", views.idea_follow, name="follow"),
    path("consultations/<str:key>/", views.consultation_detail, name="detail"),
    path("consultations/<str:key>/ideas/", views.idea_new, name="idea_new"),
    path(
        "consultations/<str:key>/documents/<int:document_id>/",
        views.consultation_document,
        name="document",
    ),
    path("office/consultations/", views.office_list, name="office_list"),
    path("office/consultations/new/", views.office_new, name="office_new"),
    path("office/consultations/<int:consultation_id>/", views.office_detail, name="office_detail"),
    path("office/consultations/<int:consultation_id>/edit/", views.office_edit, name="office_edit"),
    path(
        "office/consultations/<int:consultation_id>/<slug:action>/",
        views.office_action,
        name="office_action",
    ),
]
