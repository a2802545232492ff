"""The training library: recordings a user may play to his phone, and (curators, admins) a form
to add one. Playing goes through the dashboard's WebSocket ({"type": "playback"}), so the bridge
checks the right again, writes the audit row and tells the user the outcome in words."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.models import Role
from supervision.forms import RecordingForm
from supervision.models import Recording


def may_add_recordings(user):
    return user.is_active and (user.is_superuser or user.role in (Role.CURATOR, Role.ADMIN))


@login_required
def library(request):
    can_add = may_add_recordings(request.user)
    form = None
    if request.method == "POST":
        if not can_add:
            raise PermissionDenied(_("Only curators and admins add recordings."))
        form = RecordingForm(request.POST, owner=request.user)
        if form.is_valid():
            recording = form.save()
            messages.success(request, _("“%(title)s” was added to the library.") % {"title": recording.title})
            return redirect("library")
    elif can_add:
        form = RecordingForm(owner=request.user)
    recordings = Recording.objects.playable_by(request.user).select_related("owner")
    has_phone = request.user.extensions.exists()
    labels = {
        "connecting": _("Connecting…"),
        "offline": _("Not connected to the server; reload the page."),
        "error": _("Error"),
    }
    return render(request, "supervision/library.html", {
        "recordings": recordings, "form": form, "can_add": can_add, "has_phone": has_phone, "labels": labels,
    })
