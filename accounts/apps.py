from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Roster")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # After every app's permissions exist (supervision's are created by its own post_migrate).
        post_migrate.connect(_after_supervision, dispatch_uid="accounts.default_groups")


def _after_supervision(sender, **kwargs):
    if sender.name == "supervision":
        from .roles import ensure_default_groups

        ensure_default_groups()
