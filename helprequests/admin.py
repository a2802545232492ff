from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_titles import SentenceTitles
from helprequests.models import HelpRequest
from supervision.admin import ModeFilter, WrittenByTheBridge


@admin.register(HelpRequest)
class HelpRequestAdmin(WrittenByTheBridge, SentenceTitles, admin.ModelAdmin):
    """Read-only: rows are written by the bridge only."""

    list_title = _("Help requests: choose one to view")
    view_title = _("A help request")

    list_display = ["raised_at", "trainee_label", "curator_label", "audience", "end_reason", "responder_label",
                    "mode", "response_seconds"]
    list_filter = ["end_reason", "audience", ModeFilter, "raised_at"]  # the modes by name, no empty one
    search_fields = ["trainee_label", "curator_label", "responder_label", "call_uniqueid", "device"]
    date_hierarchy = "raised_at"
