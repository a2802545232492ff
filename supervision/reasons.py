"""Why a press ended as it did: a reason code and its arguments, put in words in whatever language
is active when they are read.

The audit row keeps the code and the arguments (`MonitoringSession.outcome_code`, `outcome_args`),
so an admin reading the audit in Russian sees Russian words for a row pressed on an English page,
and the other way round. `outcome_detail` keeps the words as the presser saw them: the text of
rows written before codes existed, and a search-friendly copy.

An argument is one of:
- a plain string or number, shown as it came (a name, a number dialled, a PBX's own error
  message such as "Permission denied": the PBX's words are not ours to translate);
- a nested reason, stored as {"code": ..., "args": ...} ("Your phone did not connect: busy.");
- for the arguments named in TRANSLATED_ARGS, a code of ours ("listen", "pickup") shown in words.

Every code has words in English and Russian (tests/test_reasons.py checks the catalogue).
"""

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

# Arguments whose value is one of our own codes (a spy mode or an action), put in words when read.
TRANSLATED_ARGS = frozenset({"mode", "action"})


def _burst(args):
    return ngettext("%(count)d press refused: %(why)s", "%(count)d presses refused: %(why)s", args["count"]) % args


TEXTS = {
    # The policy (supervision.policy)
    "unknown_action": _("Unknown action."),
    "account_inactive": _("Your account is not active."),
    "session_ended": _("Your login session has ended: sign in again."),
    "phone_gone": _("That phone does not exist (any more)."),
    "recording_gone": _("That recording does not exist (any more)."),
    "not_shared": _("“%(title)s” is not shared with you."),
    "own_call": _("You cannot monitor your own calls."),
    "owner_inactive": _("%(name)s's account is not active."),
    "not_your_team": _("%(name)s is not in your team."),
    "not_for_role": _("Your role allows only listening, not %(mode)s."),
    "not_monitorable": _("%(name)s's phone may not be monitored."),
    "no_permission": _("You do not have the right to %(action)s."),
    # Refusals before anything is sent (supervision.monitoring, supervision.cti, supervision.presses)
    "no_phone_listen": _("You have no phone in the roster to listen on."),
    "no_phone_answer": _("You have no phone in the roster to answer on."),
    "no_phone_call": _("You have no phone in the roster to call from."),
    "no_phone_play": _("You have no phone in the roster to play to."),
    "not_a_conversation": _(
        "%(name)s is not in a conversation of their own: their phone is monitoring, answering or "
        "playing something, and that cannot be joined."),
    "no_call": _("%(name)s has no call right now."),
    "cannot_join": _("%(name)s's call cannot be joined."),
    "already_monitoring": _("You are already monitoring %(name)s (%(mode)s): stop first or switch mode."),
    "previous_press": _("Your previous press is still being handled."),
    "busy": _("Your previous press is still being handled; wait until your phone answers."),
    "rate_limited": _("Too many presses; wait a few seconds."),
    "refused_burst": _burst,
    "pbx_link_state": _("The PBX link is %(state)s (%(detail)s); try again when it is back."),
    "not_ringing": _("Nothing rings on %(name)s's phone any more: answered elsewhere or hung up."),
    "cannot_pick_up": _("%(name)s's call cannot be picked up."),
    "bad_number": _("That is not a number to call: use digits, +, * and # (1 to 32)."),
    "number_refused": _("That number cannot be called from here."),
    "recording_not_found": _("That recording does not exist or is not shared with you."),
    "bad_path": _("“%(title)s” is not under the recordings folder %(root)s; ask its owner to fix it."),
    "call_recording_not_found": _("That call has no recording you may hear."),
    # Sending the Originate (supervision.presses.send_originate)
    "pbx_link_down": _("The PBX link is down: %(why)s"),
    "pbx_refused": _("The PBX refused: %(why)s"),
    "pbx_no_answer": _("The PBX did not answer in time."),
    "pbx_dropped": _("The PBX link dropped while calling your phone."),
    # How a press ended
    "phone_not_connected": _("Your phone did not connect: %(why)s."),
    "switched": _("Switched to %(mode)s."),
    "stopped_before_ringing": _("Stopped before your phone was called."),
    "stopped": _("Stopped monitoring %(name)s."),
    "call_ended": _("%(name)s's call ended."),
    "phone_hung_up": _("Your phone hung up; monitoring %(name)s ended."),
    "spy_not_started_beep": _(
        "The PBX ended the spy before it began. Without option q ChanSpy first plays the "
        "“beep” sound: the PBX may lack it (ask the administrator to install the core sounds), "
        "or %(name)s's call ended meanwhile."),
    "spy_not_started": _("The PBX ended the spy before it began: %(name)s's call ended or could not be joined."),
    "stop_refused": _(
        "The PBX did not end the call (%(why)s), so you are still connected to %(name)s's call. "
        "Hang up your phone to stop. An administrator can let the dashboard end calls: "
        "manager.conf write=call for its AMI user."),
    "no_answer_in_time": _("no answer in time"),
    "someone_else_answered": _("Too late: someone else answered %(name)s's call."),
    "caller_hung_up": _("Too late: %(name)s's caller hung up."),
    "no_longer_ringing": _("Too late: %(name)s's call was no longer ringing (answered elsewhere or hung up)."),
    "playback_finished": _("Finished playing “%(title)s”."),
    "dial_ended": _("The call to %(number)s ended."),
    # Interrupted: the PBX link or the bridge went away midway
    "link_lost": _("The PBX link was lost (%(state)s)."),
    "bridge_restarted": _("The bridge restarted while this session was in flight."),
    "bridge_restarted_unlisted": _(
        "The bridge restarted and the PBX would not list its channels (%(detail)s), so this spy "
        "could not be taken back; it may go on until the phone hangs up."),
    "link_lost_leg_gone": _("The PBX link was lost, and when it came back your phone's spy call was gone."),
    "link_lost_unlisted": _(
        "The PBX link was lost, and when it came back the PBX would not list its channels "
        "(%(detail)s): hang up your phone if it is still connected."),
    # Why a phone did not connect (OriginateResponse Reason, the leg's DialStatus or hang-up cause)
    "unavailable_or_no_extension": _("not available / no such extension"),
    "hung_up": _("hung up"),
    "no_answer": _("no answer"),
    "answered": _("answered"),
    "line_busy": _("busy"),
    "congestion": _("congestion / not available"),
    "unavailable": _("not available (the phone is not registered or not reachable)"),
    "no_such_number": _("no such number"),
    "rejected": _("the phone rejected the call"),
    "reason_code": _("reason %(code)s"),
}


class Why:
    """A reason code with its arguments. `str()` gives the words in the active language, so a
    Why goes wherever words went (a page's status message, another reason's argument); the
    audit row stores `data()`."""

    __slots__ = ("code", "args")

    def __init__(self, code, /, **args):
        if code not in TEXTS:
            raise KeyError(f"no words for reason code {code!r}")
        self.code = code
        self.args = args

    def __str__(self):
        return render(self.code, self.args) or ""

    def __repr__(self):
        return f"Why({self.code!r}, {self.args!r})"

    def __eq__(self, other):
        if isinstance(other, Why):
            return (self.code, self.args) == (other.code, other.args)
        return str(self) == other  # words compare with words

    def __hash__(self):  # a Decision (a frozen dataclass) holding one stays hashable
        return hash((self.code, repr(sorted(self.args.items(), key=lambda item: item[0]))))

    def __getitem__(self, item):  # `words[:255]` where plain text was sliced
        return str(self)[item]

    def data(self):
        return {"code": self.code, "args": {name: _stored(value) for name, value in self.args.items()}}


def _stored(value):
    if isinstance(value, Why):
        return value.data()
    if isinstance(value, dict):  # a nested reason as stored
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return str(value)


def _argument(name, value):
    if isinstance(value, dict):
        return render(value.get("code"), value.get("args")) or ""
    if isinstance(value, Why):
        return str(value)
    if name in TRANSLATED_ARGS and isinstance(value, str) and value:
        return gettext(value)
    return value


def render(code, args):
    """The words for `code` with `args` (as stored) in the active language; None for a code
    without words (then the row's stored text is shown)."""
    text = TEXTS.get(code or "")
    if text is None:
        return None
    args = {name: _argument(name, value) for name, value in (args or {}).items()}
    if callable(text):
        return text(args)
    try:
        return str(text) % args if args else str(text)
    except (KeyError, TypeError, ValueError):
        return None  # arguments that do not fit (a row edited by hand): the stored text instead


def row_fields(why):
    """The audit row's fields for `why`: a Why keeps its code and arguments beside the words;
    anything else (a PBX's own message) is kept as text only."""
    words = str(why)[:255]
    if isinstance(why, Why):
        return {"outcome_code": why.code, "outcome_args": why.data()["args"], "outcome_detail": words}
    return {"outcome_code": "", "outcome_args": {}, "outcome_detail": words}
