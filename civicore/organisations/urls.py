from django.urls import path

from civicore.organisations import views

app_name = "organisations"
urlpatterns = [
    path("", views.home, name="home"),
    path("act-for/", views.act_for, name="act_for"),
    path("register/", views.register, name="register"),
    path("applications/", views.applications, name="applications"),
    path("invitations/<int:membership_id>/", views.invitation, name="invitation"),
    path("<str:registration_number>/members/", views.members, name="members"),
    path("<str:registration_number>/members/invite/", views.member_invite, name="member_invite"),
    path("<str:registration_number>/members/<int:membership_id>/", views.member_change, name="member_change"),
    path("<str:registration_number>/grants/", views.grant_add, name="grant_add"),
    path("<str:registration_number>/grants/<int:grant_id>/revoke/", views.grant_revoke, name="grant_revoke"),
]
