"""Forms of the supervision pages."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from supervision.models import Recording


class RecordingForm(forms.ModelForm):
    """A curator adds a training recording; the path is validated by the model (root, `..`,
    characters), the owner is the curator who submits the form."""

    class Meta:
        model = Recording
        fields = ["title", "description", "path", "sharing"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.owner = owner
        self.fields["path"].widget.attrs["placeholder"] = settings.RECORDINGS_ROOT.rstrip("/") + "/lesson-1"
        self.fields["path"].help_text = _("As Asterisk sees it, without the extension, under %(root)s/.") % {
            "root": settings.RECORDINGS_ROOT.rstrip("/")}
