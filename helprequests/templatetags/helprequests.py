"""Template tags: the help requests of one call (the history call page includes the section)."""

from django import template

from helprequests.models import HelpRequest

register = template.Library()


@register.filter
def minutes_seconds(seconds):
    """61.4 -> "1:01" (a response time)."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


@register.inclusion_tag("helprequests/_call_section.html", takes_context=True)
def help_call_section(context, trainee, call_uniqueid, heading_level=2):
    """The requests `trainee` raised during the call `call_uniqueid`, as far as the reader may see
    them (HelpRequest.objects.visible_to); nothing at all when there were none."""
    request = context.get("request")
    rows = []
    if trainee is not None and call_uniqueid and request is not None and request.user.is_authenticated:
        rows = list(HelpRequest.objects.visible_to(request.user).for_call(trainee, call_uniqueid))
    return {"rows": rows, "heading_level": heading_level}
