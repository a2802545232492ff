"""The roster CSV import in the admin: upload, a dry-run preview of every row, then apply.

The same code as `manage.py import_roster` (accounts.roster_import): the preview is a real run in a
transaction that is rolled back, and applying runs every check again on the file as previewed,
all or nothing, so a roster changed in between is reported rather than half-imported.
"""

import base64
import binascii

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .models import Extension
from .roster_import import RosterImportError, import_roster, parse_roster

MAX_FILE_BYTES = 2 * 1024 * 1024  # a roster of thousands of rows is far below this


class RosterUploadForm(forms.Form):
    file = forms.FileField(label=_("Roster file (CSV, UTF-8)"),
                           help_text=_("One row per extension; the columns are described in docs/roster-import.md."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        return upload.read()


class RosterApplyForm(forms.Form):
    """The previewed file, sent back as it was (base64) when the admin confirms."""

    data = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(widget=forms.HiddenInput, required=False, max_length=255)

    def clean_data(self):
        try:
            data = base64.b64decode(self.cleaned_data["data"], validate=True)
        except (binascii.Error, ValueError):
            raise forms.ValidationError(_("The previewed file did not come back intact; upload it again.")) from None
        if len(data) > MAX_FILE_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        return data


def preview_rows(roster, report):
    """One line per user and per extension of the file, with what the import does to it."""
    def action(name, created, updated):
        if name in created:
            return _("created")
        if name in updated:
            return _("updated")
        return _("unchanged")

    users = [
        {"line": row.line, "username": row.username, "role": row.role, "curator": row.curator,
         "name": " ".join(part for part in (row.values.get("first_name"), row.values.get("last_name")) if part),
         "password": bool(row.password),
         "action": action(row.username, report.users_created, report.users_updated)}
        for row in roster.users.values()
    ]
    extensions = [
        {"line": row.line, "device": row.device, "username": row.username,
         "display_name": row.values.get("display_name", ""),
         "action": action(row.device, report.extensions_created, report.extensions_updated)}
        for row in roster.extensions
    ]
    return users, extensions


def import_view(model_admin, request):
    """GET: the upload form. POST with a file: the preview (or every problem). POST `apply`: the import."""
    if not (model_admin.has_add_permission(request) and model_admin.has_change_permission(request)
            and request.user.has_perms(["accounts.add_extension", "accounts.change_extension"])):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Import the roster from CSV"),
    }
    template = "admin/accounts/user/import_roster.html"
    if request.method != "POST":
        return TemplateResponse(request, template, {**context, "form": RosterUploadForm()})

    if "apply" in request.POST:
        form = RosterApplyForm(request.POST)
        if not form.is_valid():
            return TemplateResponse(request, template, {**context, "form": RosterUploadForm(), "apply_form": form})
        data, name = form.cleaned_data["data"], form.cleaned_data["name"]
        try:
            report = import_roster(data, dry_run=False)
        except RosterImportError as exc:
            return TemplateResponse(request, template, {
                **context, "form": RosterUploadForm(), "file_name": name, "problems": exc.errors, "applying": True})
        model_admin.message_user(request, _(
            "Roster imported from %(name)s: users %(uc)d created, %(uu)d updated, %(un)d unchanged; "
            "extensions %(ec)d created, %(eu)d updated, %(en)d unchanged.") % {
            "name": name or _("the file"), "uc": len(report.users_created), "uu": len(report.users_updated),
            "un": len(report.users_unchanged), "ec": len(report.extensions_created),
            "eu": len(report.extensions_updated), "en": len(report.extensions_unchanged)}, messages.SUCCESS)
        return redirect(reverse("admin:accounts_user_changelist"))

    form = RosterUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return TemplateResponse(request, template, {**context, "form": form})
    data, name = form.cleaned_data["file"], request.FILES["file"].name[:255]
    try:
        report = import_roster(data, dry_run=True)
    except RosterImportError as exc:
        return TemplateResponse(request, template, {
            **context, "form": RosterUploadForm(), "file_name": name, "problems": exc.errors})
    roster, _errors = parse_roster(data)
    users, extensions = preview_rows(roster, report)
    apply_form = RosterApplyForm(initial={"data": base64.b64encode(data).decode("ascii"), "name": name})
    return TemplateResponse(request, template, {
        **context, "form": RosterUploadForm(), "file_name": name, "report": report, "users": users,
        "extensions": extensions, "apply_form": apply_form,
        "extension_opts": Extension._meta,
    })
