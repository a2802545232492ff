from django import template

register = template.Library()


@register.filter
def clock(seconds):
    """Seconds as a call length: `0:07`, `12:05`, `1:02:03`."""
    if seconds is None:
        return ""
    total = int(round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
