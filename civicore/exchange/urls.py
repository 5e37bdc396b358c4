"""Pages of the exchange, mounted at the site root: the citizen's change receipts under
/my-data/changes/ and the officers' dead-letter list under /office/deliveries/."""

from django.urls import path

from civicore.exchange import views

app_name = "exchange"
urlpatterns = [
    path("my-data/changes/", views.change_list, name="change_list"),
    path("my-data/changes/<uuid:event_uuid>/", views.change_receipt, name="change_receipt"),
    path("office/deliveries/", views.delivery_list, name="delivery_list"),
    path("office/deliveries/replay-dead/", views.delivery_replay_dead, name="delivery_replay_dead"),
    path("office/deliveries/<int:delivery_id>/", views.delivery_detail, name="delivery_detail"),
    path("office/deliveries/<int:delivery_id>/replay/", views.delivery_replay, name="delivery_replay"),
]
