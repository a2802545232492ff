from django.apps import AppConfig


class SupervisionConfig(AppConfig):
    name = "supervision"
    verbose_name = "Live supervision"
    default_auto_field = "django.db.models.BigAutoField"
