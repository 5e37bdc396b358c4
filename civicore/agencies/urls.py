from django.urls import path

from civicore.agencies import views

app_name = "agencies"
urlpatterns = [
    path("", views.officer_list, name="officers"),
    path("add/", views.officer_add, name="officer_add"),
    path("teams/add/", views.team_add, name="team_add"),
    path("<int:officer_id>/roles/", views.officer_role, name="officer_role"),
    path("<int:officer_id>/team/", views.officer_team, name="officer_team"),
    path("<int:officer_id>/deactivate/", views.officer_deactivate, name="officer_deactivate"),
]
