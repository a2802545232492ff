"""Admin forms of the roster: users with a role and a curator, extensions checked as a set."""

from django import forms
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import Role, User


class RosterUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "role", "curator")


class RosterUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


class ExtensionInlineFormSet(forms.BaseInlineFormSet):
    """Two new rows naming the same device are only visible together (the database has neither yet)."""

    def clean(self):
        super().clean()
        seen = {}
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            instance = form.instance
            if not instance.resource:
                continue
            device = instance.device
            if device in seen:
                form.add_error("resource", _("%(device)s is already on another row.") % {"device": device})
            seen[device] = form


class AssignCuratorForm(forms.Form):
    """The intermediate page of the "assign to curator" bulk action."""

    curator = forms.ModelChoiceField(
        label=_("New curator"),
        queryset=User.objects.filter(role=Role.CURATOR, is_active=True),
        empty_label=None,
    )


def reassign_trainees(trainees, curator):
    """Give every trainee in `trainees` the curator `curator`; refuses anyone who is not a trainee."""
    if curator.role != Role.CURATOR:
        raise ValidationError(_("%(user)s is not a curator.") % {"user": curator})
    not_trainees = [user for user in trainees if user.role != Role.TRAINEE]
    if not_trainees:
        names = ", ".join(user.username for user in not_trainees)
        raise ValidationError(_("Only trainees have a curator; not a trainee: %(names)s.") % {"names": names})
    changed = 0
    for trainee in trainees:
        if trainee.curator_id != curator.pk:
            trainee.curator = curator
            trainee.save(update_fields=["curator"])
            changed += 1
    return changed

