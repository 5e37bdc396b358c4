"""The citizen's rating page, /feedback/<kind>/<public id>/, and the office's /office/feedback/."""

from django.urls import path

from civicore.feedback import views

app_name = "feedback"
urlpatterns = [
    path("feedback/<slug:kind>/<uuid:public_id>/", views.rating_page, name="rate"),
    path("office/feedback/", views.office_feedback, name="office"),
]
