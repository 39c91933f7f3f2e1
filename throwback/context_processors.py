from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    """Settings the templates need."""
    return {
        "allow_signup": settings.THROWBACK_ALLOW_SIGNUP,
        "thalia_login": bool(settings.THALIA_OIDC_CLIENT_ID),
    }
