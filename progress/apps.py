from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class ProgressConfig(AppConfig):
    """A trainee's progress and a curator's team side by side: read-only pages over the call
    history, the coaching app's evaluations and notes, and the help requests (no models)."""

    name = "progress"
    verbose_name = pgettext_lazy("progress", "Progress")
