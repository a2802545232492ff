from django import forms
from django.utils.translation import gettext_lazy as _

from coaching.models import Criterion, Scorecard


class ScorecardForm(forms.ModelForm):
    class Meta:
        model = Scorecard
        fields = ["name", "description", "scale_max", "pass_threshold", "good_threshold", "active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class CriterionForm(forms.ModelForm):
    class Meta:
        model = Criterion
        fields = ["name", "description", "weight", "critical", "position"]
        widgets = {"weight": forms.NumberInput(attrs={"min": 1, "max": 100}),
                   "position": forms.NumberInput(attrs={"min": 0})}

    def has_changed(self):
        # A new row left without a name is an unused spare row, whatever its weight and order say.
        if self.instance.pk is None and not (self.data.get(self.add_prefix("name")) or "").strip():
            return False
        return super().has_changed()


class _Criteria(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [form for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("name")]
        if not kept:
            raise forms.ValidationError(_("A scorecard needs at least one criterion."))


CriterionFormSet = forms.inlineformset_factory(
    Scorecard, Criterion, form=CriterionForm, formset=_Criteria, extra=2, can_delete=True,
)


SHOW_CHOICES = [
    ("all", _("Every version")),
    ("current", _("Newest versions only")),
    ("unacknowledged", _("Not yet acknowledged")),
]


class ScoreListFilter(forms.Form):
    trainee = forms.ModelChoiceField(queryset=None, required=False, label=_("Trainee"), empty_label=_("Everyone"))
    show = forms.ChoiceField(choices=SHOW_CHOICES, required=False, label=_("Show"))

    def __init__(self, *args, trainees=None, **kwargs):
        super().__init__(*args, **kwargs)
        if trainees is None:
            del self.fields["trainee"]
        else:
            self.fields["trainee"].queryset = trainees.order_by("first_name", "last_name", "username")
