from django.apps import AppConfig


class ThaliaConfig(AppConfig):
    name = "thalia"
    verbose_name = "Association website"

    def ready(self) -> None:
        from thalia import checks  # noqa: F401 - registers system checks
