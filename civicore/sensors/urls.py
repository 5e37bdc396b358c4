"""Back-office pages of city sensors, under /office/sensors/."""

from django.urls import path

from civicore.sensors import views

app_name = "sensors"
urlpatterns = [
    path("office/sensors/", views.dashboard, name="dashboard"),
    path("office/sensors/add/device/", views.device_new, name="device_new"),
    path("office/sensors/add/device-type/", views.device_type_new, name="device_type_new"),
    path("office/sensors/add/rule/", views.rule_new, name="rule_new"),
    path("office/sensors/devices/<slug:device_id>/", views.device_detail, name="device_detail"),
    path("office/sensors/devices/<slug:device_id>/charts/", views.device_charts, name="device_charts"),
    path("office/sensors/devices/<slug:device_id>/command/", views.device_command, name="device_command"),
    path(
        "office/sensors/devices/<slug:device_id>/credentials/<slug:action>/",
        views.device_credentials,
        name="device_credentials",
    ),
    path("office/sensors/alarms/", views.alarm_list, name="alarms"),
    path("office/sensors/alarms/<int:alarm_id>/<slug:action>/", views.alarm_action, name="alarm_action"),
    path("office/sensors/commands/", views.command_list, name="commands"),
    path("office/sensors/rejections/", views.rejection_list, name="rejections"),
    path("office/sensors/rules/", views.rule_list, name="rules"),
    path("office/sensors/rules/<slug:code>/", views.rule_detail, name="rule_detail"),
    path("office/sensors/rules/<slug:code>/edit/", views.rule_edit, name="rule_edit"),
    path("office/sensors/rules/<slug:code>/<slug:action>/", views.rule_toggle, name="rule_toggle"),
]
