from django.urls import path

from civicore.notify import views

app_name = "notify"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:notification_id>/read", views.mark_read, name="read"),
]
