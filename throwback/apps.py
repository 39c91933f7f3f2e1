from django.apps import AppConfig


class ThrowbackConfig(AppConfig):
    """The project itself, installed so that its system checks (throwback/checks.py) are registered."""

    name = "throwback"
    verbose_name = "Throwback"

    def ready(self) -> None:
        from throwback import checks  # noqa: F401 - registers system checks
