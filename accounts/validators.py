"""Validators for every roster value that can reach an AMI message or a ChanSpy argument.

AMI is a line protocol: a CR or LF inside a value would start a new header (header injection).
ChanSpy and Originate split their Data on commas and pipes, and parentheses open option arguments,
so those never belong in a roster value either.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

FORBIDDEN = {
    "\r": "carriage return",
    "\n": "line feed",
    ",": "comma",
    "|": "pipe",
    "(": "parenthesis",
    ")": "parenthesis",
    " ": "space",
    "\t": "tab",
    ";": "semicolon",
    "\x00": "NUL",
}

# ASCII only, matched with fullmatch (`$` alone would let a trailing newline through).
RESOURCE_RE = re.compile(r"[A-Za-z0-9_.+*#-]+")
CONTEXT_RE = re.compile(r"[A-Za-z0-9_.+-]+")
# A name may end up quoted in a CallerID (`"Anna Petrova" <201>`): quotes, angle brackets and
# backslashes would end the quoted part early, so they are refused with the control bytes.
DISPLAY_FORBIDDEN = {'"': "double quote", "<": "angle bracket", ">": "angle bracket", "\\": "backslash"}


def reject_forbidden(value):
    for char, name in FORBIDDEN.items():
        if char in value:
            raise ValidationError(_("may not contain a %(what)s"), code="forbidden", params={"what": name})


def validate_resource(value):
    """The phone's resource (e.g. `104`): goes into Channel, ChanSpy data and CallerID."""
    reject_forbidden(value)
    if not RESOURCE_RE.fullmatch(value):
        raise ValidationError(
            _("only letters, digits and _ . + * # - are allowed"), code="invalid_resource"
        )
    if len(value) > 40:
        raise ValidationError(_("at most 40 characters"), code="too_long")


def validate_context(value):
    """A dialplan context name (Local/<resource>@<context>)."""
    reject_forbidden(value)
    if not CONTEXT_RE.fullmatch(value):
        raise ValidationError(_("only letters, digits and _ . + - are allowed"), code="invalid_context")


def validate_display_text(value):
    """Free text (names, display names): shown in the page and possibly quoted in a CallerID.

    Spaces are fine here; line breaks, control bytes and CallerID quoting characters are not.
    """
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        raise ValidationError(_("may not contain line breaks or control characters"), code="control")
    for char, name in DISPLAY_FORBIDDEN.items():
        if char in value:
            raise ValidationError(_("may not contain a %(what)s"), code="forbidden", params={"what": name})
