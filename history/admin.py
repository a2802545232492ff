from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_titles import SentenceTitles
from history.models import CallRecord
from supervision.admin import WrittenByTheBridge


@admin.register(CallRecord)
class CallRecordAdmin(WrittenByTheBridge, SentenceTitles, admin.ModelAdmin):
    """Call history is read-only: rows are written by the bridge only."""

    list_title = _("Call history: choose a call to view")
    view_title = _("A call")

    list_display = ["ring_started_at", "person_label", "device", "direction", "other_number", "talk_seconds", "monitored"]
    list_filter = ["direction", "monitored", "ring_started_at"]
    search_fields = ["person_label", "device", "other_number", "other_name", "uniqueid", "person__username"]
    date_hierarchy = "ring_started_at"
