"""The call history's filters: one form for the list page and its CSV export.

Who may be chosen is decided here, on the server: a trainee sees only his own calls (no person
field), a curator himself and his trainees, an admin everyone. A person outside that list is an
invalid choice (the form says so and the list shows nothing), never a query for his calls.
"""

import datetime

from django import forms
from django.apps import apps
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, User
from history.models import Direction
from supervision.audit_views import _date_field

YES_NO = [("", _("any")), ("yes", _("yes")), ("no", _("no"))]
MAX_SECONDS = 7 * 24 * 3600


def sees_everyone(user):
    return user.is_superuser or getattr(user, "role", None) == Role.ADMIN


def choosable_people(user):
    """Whose calls `user` may pick in the person filter (None: no such filter, his own calls only)."""
    if sees_everyone(user):
        return User.objects.order_by("first_name", "last_name", "username")
    if user.role == Role.CURATOR:
        return User.objects.filter(Q(pk=user.pk) | Q(curator=user)).order_by("first_name", "last_name", "username")
    return None


def coaching_installed():
    return apps.is_installed("coaching")


def evaluated_calls():
    """Calls that have an evaluation (coaching: keyed by trainee + call uniqueid), as a subquery."""
    from coaching.models import Evaluation

    return Exists(Evaluation.objects.filter(trainee=OuterRef("person"), call_uniqueid=OuterRef("uniqueid")))


def _seconds_field(label):
    return forms.IntegerField(label=label, required=False, min_value=0, max_value=MAX_SECONDS,
                              widget=forms.NumberInput(attrs={"size": 6, "inputmode": "numeric"}),
                              validators=[MinValueValidator(0), MaxValueValidator(MAX_SECONDS)])


class CallFilter(forms.Form):
    person = forms.ModelChoiceField(label=_("Person"), required=False, queryset=User.objects.none(),
                                    empty_label=_("everyone I may see"))
    date_from = _date_field(_("From"))
    date_to = _date_field(_("To"))
    direction = forms.ChoiceField(label=_("Direction"), required=False,
                                  choices=[("", _("any"))] + list(Direction.choices))
    min_talk = _seconds_field(_("Talk at least, s"))
    max_talk = _seconds_field(_("Talk at most, s"))
    monitored = forms.ChoiceField(label=_("Monitored"), required=False, choices=YES_NO)
    evaluated = forms.ChoiceField(label=_("Evaluated"), required=False, choices=YES_NO)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        people = choosable_people(user)
        if people is None:
            del self.fields["person"]
        else:
            self.fields["person"].queryset = people
        if not coaching_installed():
            del self.fields["evaluated"]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("“From” is after “To”."))
        low, high = data.get("min_talk"), data.get("max_talk")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError(_("The shortest talk time is longer than the longest."))
        return data

    def apply(self, queryset):
        data = self.cleaned_data
        if data.get("person"):
            queryset = queryset.filter(person=data["person"])
        zone = timezone.get_current_timezone()
        if data.get("date_from"):
            start = datetime.datetime.combine(data["date_from"], datetime.time.min, tzinfo=zone)
            queryset = queryset.filter(ring_started_at__gte=start)
        if data.get("date_to"):
            end = datetime.datetime.combine(data["date_to"] + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
            queryset = queryset.filter(ring_started_at__lt=end)
        if data.get("direction"):
            queryset = queryset.filter(direction=data["direction"])
        if data.get("min_talk") is not None:
            queryset = queryset.filter(talk_seconds__gte=data["min_talk"])
        if data.get("max_talk") is not None:
            queryset = queryset.filter(talk_seconds__lte=data["max_talk"])
        if data.get("monitored"):
            queryset = queryset.filter(monitored=data["monitored"] == "yes")
        if data.get("evaluated"):
            queryset = queryset.alias(has_evaluation=evaluated_calls()).filter(
                has_evaluation=data["evaluated"] == "yes")
        return queryset
