from django.urls import path

from thalia import views

app_name = "thalia"

urlpatterns = [
    # Log in with Thalia (OpenID Connect).
    path("accounts/thalia/login/", views.LoginView.as_view(), name="login"),
    path("accounts/thalia/callback/", views.CallbackView.as_view(), name="callback"),
    # Connecting Throwback to the website (the code page is shared with connect_thalia).
    path("accounts/thalia/code/", views.code, name="code"),
    path("accounts/thalia/connect/", views.connect, name="connect"),
]
