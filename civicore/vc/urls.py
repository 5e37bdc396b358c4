from django.urls import path

from civicore.vc import views

app_name = "vc"
urlpatterns = [
    path("my-documents/", views.wallet, name="wallet"),
    path("my-documents/<uuid:public_id>/", views.document, name="document"),
    path("my-documents/<uuid:public_id>/credential.sd-jwt", views.credential_download, name="download"),
    path("my-documents/shared/<str:public_id>/withdraw", views.presentation_withdraw, name="withdraw"),
    path("shared/<str:public_id>/", views.shared, name="shared"),
    path("shared/<str:public_id>/presentation.sd-jwt", views.shared_download, name="shared_download"),
    path("office/documents/<uuid:public_id>/", views.office_document, name="office_document"),
    path("office/documents/<uuid:public_id>/status", views.office_status, name="office_status"),
]
