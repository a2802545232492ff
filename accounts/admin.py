"""Roster management in the Django admin: users with their phones and (for curators) their trainees."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .forms import (
    AssignCuratorForm,
    ExtensionInlineFormSet,
    RosterUserChangeForm,
    RosterUserCreationForm,
    reassign_trainees,
)
from .admin_titles import SentenceTitles
from .models import Extension, Role, User


class LabelledRows:
    """A tabular inline's cells are labelled by their column header only, which assistive
    technology does not tie to the field: each field of each row names itself (aria-label)."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        for field in form.fields.values():
            if field.label:
                field.widget.attrs.setdefault("aria-label", str(field.label))


class LabelledExtensionFormSet(LabelledRows, ExtensionInlineFormSet):
    pass


class LabelledTraineeFormSet(LabelledRows, BaseInlineFormSet):
    pass


class ExtensionInline(admin.TabularInline):
    model = Extension
    formset = LabelledExtensionFormSet
    fields = ("technology", "resource", "display_name", "phone_preset", "originate_context", "monitorable",
              "record_calls")
    extra = 0


class TraineeInline(admin.TabularInline):
    """A curator's trainees. Reassigning happens on the trainee or with the bulk action, so no
    adding or deleting users from here."""

    model = User
    fk_name = "curator"
    fields = ("username", "first_name", "last_name", "is_active")
    readonly_fields = ("username",)
    show_change_link = True
    formset = LabelledTraineeFormSet
    extra = 0
    can_delete = False
    verbose_name = _("trainee")
    verbose_name_plural = _("trainees")

    def has_add_permission(self, request, obj=None):
        return False


class CuratorFilter(admin.SimpleListFilter):
    title = _("curator")
    parameter_name = "curator"

    def lookups(self, request, model_admin):
        return [(str(user.pk), str(user)) for user in User.objects.filter(role=Role.CURATOR)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(curator_id=self.value())
        return queryset


@admin.register(User)
class RosterUserAdmin(SentenceTitles, UserAdmin):
    list_title = _("Choose a user to change")
    add_title = _("Add a user")
    change_title = _("Change the user")
    view_title = _("The user")
    form = RosterUserChangeForm
    add_form = RosterUserCreationForm
    list_display = ("username", "full_name", "role", "curator", "devices", "is_active", "is_staff")
    list_filter = ("role", CuratorFilter, "is_active", "is_staff")
    search_fields = ("username", "first_name", "last_name", "email", "extensions__resource")
    list_select_related = ("curator",)
    actions = ["assign_to_curator"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Roster"), {"fields": ("role", "curator")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"), "classes": ("collapse",)},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined"), "classes": ("collapse",)}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "role", "curator", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_urls(self):
        from django.urls import path

        from .admin_import import import_view

        return [
            path("import/", self.admin_site.admin_view(lambda request: import_view(self, request)),
                 name="accounts_user_import"),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        # (searching extensions__resource joins; the admin itself then keeps one row per user)
        return super().get_queryset(request).prefetch_related("extensions")

    def get_inlines(self, request, obj):
        if obj is not None and obj.role == Role.CURATOR:
            return [ExtensionInline, TraineeInline]
        return [ExtensionInline]

    @admin.display(description=_("name"), ordering="last_name")
    def full_name(self, user):
        return user.get_full_name()

    @admin.display(description=_("extensions"))
    def devices(self, user):
        return ", ".join(extension.device for extension in user.extensions.all())

    @admin.action(description=_("Assign selected trainees to a curator"), permissions=["change"])
    def assign_to_curator(self, request, queryset):
        trainees = list(queryset.order_by("username"))
        not_trainees = [user.username for user in trainees if user.role != Role.TRAINEE]
        if not_trainees:
            self.message_user(
                request,
                _("Only trainees have a curator; not a trainee: %(names)s. Nothing was changed.")
                % {"names": ", ".join(not_trainees)},
                messages.ERROR,
            )
            return None
        form = AssignCuratorForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            curator = form.cleaned_data["curator"]
            try:
                changed = reassign_trainees(trainees, curator)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return None
            self.message_user(
                request,
                ngettext(
                    "%(count)d trainee now has the curator %(curator)s.",
                    "%(count)d trainees now have the curator %(curator)s.",
                    changed,
                )
                % {"count": changed, "curator": curator},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Assign to curator"),
            "opts": self.model._meta,
            "trainees": trainees,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/accounts/user/assign_curator.html", context)


@admin.register(Extension)
class ExtensionAdmin(SentenceTitles, admin.ModelAdmin):
    list_title = _("Choose an extension to change")
    add_title = _("Add an extension")
    change_title = _("Change the extension")
    view_title = _("The extension")
    list_display = ("device", "user", "display_name", "technology", "phone_preset", "originate_context", "monitorable")
    list_filter = ("technology", "phone_preset", "monitorable")
    search_fields = ("resource", "display_name", "originate_context", "user__username", "user__first_name", "user__last_name")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    actions = ["mark_not_monitorable", "mark_monitorable"]

    @admin.display(description=_("device"), ordering="resource")
    def device(self, extension):
        return extension.device

    @admin.action(description=_("Mark selected extensions not monitorable"), permissions=["change"])
    def mark_not_monitorable(self, request, queryset):
        count = queryset.update(monitorable=False)
        self.message_user(request, _("%(count)d extension(s) may no longer be monitored.") % {"count": count})

    @admin.action(description=_("Mark selected extensions monitorable"), permissions=["change"])
    def mark_monitorable(self, request, queryset):
        count = queryset.update(monitorable=True)
        self.message_user(request, _("%(count)d extension(s) may be monitored.") % {"count": count})
