"""Q.850 hang-up causes in words (what Asterisk puts in Hangup's Cause)."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

CAUSES = {
    0: gettext_noop("unknown"),
    1: gettext_noop("unallocated (unknown) number"),
    3: gettext_noop("no route to destination"),
    16: gettext_noop("normal clearing"),
    17: gettext_noop("user busy"),
    18: gettext_noop("no user responding"),
    19: gettext_noop("no answer"),
    20: gettext_noop("subscriber absent"),
    21: gettext_noop("call rejected"),
    22: gettext_noop("number changed"),
    26: gettext_noop("answered elsewhere"),
    27: gettext_noop("destination out of order"),
    28: gettext_noop("invalid number format"),
    29: gettext_noop("facility rejected"),
    31: gettext_noop("normal, unspecified"),
    34: gettext_noop("no circuit available"),
    38: gettext_noop("network out of order"),
    41: gettext_noop("temporary failure"),
    42: gettext_noop("switching equipment congestion"),
    44: gettext_noop("requested channel not available"),
    50: gettext_noop("facility not subscribed"),
    58: gettext_noop("bearer capability not available"),
    65: gettext_noop("bearer capability not implemented"),
    66: gettext_noop("channel type not implemented"),
    69: gettext_noop("facility not implemented"),
    81: gettext_noop("invalid call reference"),
    88: gettext_noop("incompatible destination"),
    95: gettext_noop("invalid message"),
    96: gettext_noop("mandatory information missing"),
    97: gettext_noop("message type nonexistent"),
    100: gettext_noop("invalid information element contents"),
    102: gettext_noop("recovery on timer expiry"),
    111: gettext_noop("protocol error"),
    127: gettext_noop("interworking, unspecified"),
}


def cause_text(code):
    """Words for a cause code in the active language ("" when there is no code)."""
    if code is None:
        return ""
    words = CAUSES.get(code)
    if words is None:
        return _("cause %(code)s") % {"code": code}
    return _(words)
