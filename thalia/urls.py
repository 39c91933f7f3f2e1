from django.urls import path

from thalia import views

app_name = "thalia"

urlpatterns = [
    path("accounts/thalia/login/", views.LoginView.as_view(), name="login"),
    path("accounts/thalia/callback/", views.CallbackView.as_view(), name="callback"),
    path("accounts/thalia/code/", views.code, name="code"),
    path("accounts/thalia/connect/", views.connect, name="connect"),
]
