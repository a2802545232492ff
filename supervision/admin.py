from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_titles import SentenceTitles
from supervision.models import Kind, Mode, MonitoringSession, Recording


class WrittenByTheBridge:
    """Admin of rows only the bridge writes (audit, call history, help requests): every field shown,
    none added, changed or removed by hand."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ModeFilter(admin.SimpleListFilter):
    """The spy modes by name (the field has no choices, and pickups, calls and playbacks have no
    mode: listing the values found would offer an empty, nameless one)."""

    title = _("mode")
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return Mode.choices

    def queryset(self, request, queryset):
        if self.value() in Mode.values:
            return queryset.filter(mode=self.value())
        return queryset


@admin.register(MonitoringSession)
class MonitoringSessionAdmin(WrittenByTheBridge, SentenceTitles, admin.ModelAdmin):
    """The audit trail is read-only: rows are written by the bridge only, never edited or removed."""

    list_title = _("Audit trail: choose a row to view")
    view_title = _("An audit row")

    # "why" in the language of the admin reading it (MonitoringSession.why), not the presser's.
    list_display = ["requested_at", "user_label", "target", "kind", "mode", "outcome", "why"]
    list_filter = ["kind", ModeFilter, "outcome", "requested_at"]
    search_fields = ["user_label", "target_label", "target_device", "user__username", "target_user__username"]
    date_hierarchy = "requested_at"

    @admin.display(description=_("on whom or what"), ordering="target_label")
    def target(self, row):
        """A number called or a recording played is said to be one, not shown as a monitored person."""
        if row.kind == Kind.DIAL:
            return _("number %(number)s") % {"number": row.target_label}
        if row.kind == Kind.PLAYBACK:
            return _("recording “%(title)s”") % {"title": row.target_label}
        return f"{row.target_label} ({row.target_device})" if row.target_device else row.target_label

    def get_readonly_fields(self, request, obj=None):
        names = [field.name for field in self.model._meta.fields]
        return names[:names.index("outcome") + 1] + ["why"] + names[names.index("outcome") + 1:]


@admin.register(Recording)
class RecordingAdmin(SentenceTitles, admin.ModelAdmin):
    """Training recordings; the path is validated by the model (under RECORDINGS_ROOT, no `..`)."""

    list_title = _("Choose a training recording to change")
    add_title = _("Add a training recording")
    change_title = _("Change the training recording")
    view_title = _("The training recording")

    list_display = ["title", "owner", "sharing", "path", "created_at"]
    list_filter = ["sharing", "owner"]
    search_fields = ["title", "description", "path", "owner__username"]
    raw_id_fields = ["owner"]

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}


# The admin names the product (not "Django administration"), in the page's language.
admin.site.site_header = _("Call supervision · roster")
admin.site.site_title = _("Call supervision")
admin.site.index_title = _("Roster and audit")
