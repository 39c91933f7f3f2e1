from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members and reference faces"

    def ready(self) -> None:
        from members import checks  # noqa: F401 - registers system checks
