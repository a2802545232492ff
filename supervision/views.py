from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from supervision import health


def dashboard_labels():
    """Every string dashboard.js shows, translated for this request's language."""
    return {
        "idle": _("Idle"),
        "ringing": _("Ringing"),
        "in_call": _("In a call"),
        "dialling": _("Dialling"),
        "offline": _("Phone offline"),
        "no_phone": _("No phone assigned"),
        "calls": _("Calls"),
        "no_number": _("number not shown"),
        "talk_time": _("talking %(time)s"),
        "ring_time": _("ringing %(time)s"),
        "dial_time": _("dialling %(time)s"),
        "idle_time": _("idle %(time)s"),
        "phone_online": _("Phone online"),
        "phone_online_why": _("The PBX checks this phone (qualify) and it answers."),
        "phone_unknown": _("Phone state unknown"),
        "phone_unknown_why": _("The PBX does not report this phone's state (no qualify): it may be unplugged without the card knowing."),
        "phone_unreachable": _("Phone unreachable (the PBX gets no answer)"),
        "phone_unregistered": _("Phone not registered with the PBX"),
        "phone_unavailable": _("Phone unavailable, says the PBX"),
        "phone_invalid": _("The PBX does not know this phone"),
        "listened_by": _("On this call"),
        "watcher_listen": _("%(name)s (listening)"),
        "watcher_whisper": _("%(name)s (whispering)"),
        "watcher_barge": _("%(name)s (barging in)"),
        "doing_listen": _("Listening to %(name)s"),
        "doing_whisper": _("Whispering to %(name)s"),
        "doing_barge": _("Barging in on %(name)s"),
        "leg_joining": _("Joining a call…"),
        "leg_pickup": _("Answering a call"),
        "leg_playback": _("Playing a recording"),
        "someone": _("someone"),
        "listen": _("Listen"),
        "whisper": _("Whisper"),
        "barge": _("Barge"),
        "pickup": _("Answer here"),
        "stop": _("Stop"),
        "switch_to": _("Switch to"),
        "link_connecting": _("Connecting to the PBX…"),
        "link_up": _("Connected to the PBX"),
        "link_down": _("No connection to the PBX since %(time)s"),
        "link_retry": _("Trying again in %(seconds)s s."),
        "link_login_refused": _("The PBX refused the dashboard's login: %(detail)s"),
        "link_no_bridge": _("The server's connection to the PBX is not running"),
        "stale_banner": _("Last known at %(time)s: %(reason)s"),
        "stale_link": _("the PBX link is down, so calls shown may have changed and buttons cannot act."),
        "stale_no_bridge": _("the server's connection to the PBX is not running, so calls shown may have changed and buttons cannot act."),
        "stale_socket": _("this page lost its connection to the server, so calls shown may have changed and buttons cannot act."),
        "team_of": _("%(name)s's team"),
        "no_team": _("No team"),
        "team_count": _("%(shown)s of %(total)s"),
        "resync_not_permitted": _(
            "The AMI user may not list channels (CoreShowChannels): calls that started before the last connection are not shown."
        ),
        "socket_connecting": _("Connecting…"),
        "socket_live": _("Live"),
        "socket_reconnecting": _("Connection lost, reconnecting in %(seconds)s s…"),
        "monitored": _("You are being listened to by %(name)s"),
        "monitored_listen": _("You are being listened to by %(name)s"),
        "monitored_whisper": _("%(name)s is whispering to you (your caller does not hear it)"),
        "monitored_barge": _("%(name)s has joined your call (your caller hears them too)"),
        "monitored_mode": _("%(name)s is on your call (%(mode)s)"),
        "my_phone": _("My phone"),
        "nobody": _("Nobody to monitor yet: ask an admin to add your team."),
        "error": _("Error"),
        "unknown": _("unknown"),
        # Help requests (help.js)
        "help_raise": _("I need help"),
        "help_cancel": _("Cancel help request"),
        "help_told_curator": _("Help requested: %(name)s has been told."),
        "help_told_admins": _("Help requested: your curator is not online, so the administrators have been told."),
        "help_told_nobody": _("Help requested, but nobody who can help is online right now. It stays open until someone is."),
        "help_joined_me": _("%(name)s joined your call (%(mode)s) after %(time)s."),
        "help_cancelled_me": _("You cancelled your help request."),
        "help_call_ended_me": _("Your call ended, so your help request was closed."),
        "help_interrupted": _("Your help request was closed: the server lost track of the call."),
        "help_alert": _("%(name)s needs help on a call"),
        "help_asks": _("%(name)s needs help"),
        "help_waiting": _("waiting %(time)s"),
        "help_card": _("Needs help · %(time)s"),
        "help_curator_away": _("(curator %(name)s is not online)"),
        "help_join": _("Join %(name)s's call"),
        "help_joined": _("%(responder)s joined %(name)s's call (%(mode)s) after %(time)s."),
        "help_cancelled": _("%(name)s cancelled the help request."),
        "help_call_ended": _("%(name)s's call ended; the help request is closed."),
        "help_interrupted_for": _("%(name)s's help request was closed: the server lost track of the call."),
        "help_as_listen": _("listening"),
        "help_as_whisper": _("whispering"),
        "help_as_barge": _("barging in"),
    }


def dashboard_config():
    """The site's thresholds: when the page colours a ring or a call as long, when a status line goes."""
    return {"long_ring_seconds": settings.LONG_RING_SECONDS, "long_call_seconds": settings.LONG_CALL_SECONDS,
            "status_line_seconds": settings.STATUS_LINE_SECONDS}


@login_required
def dashboard(request):
    return render(request, "supervision/dashboard.html", {"labels": dashboard_labels(), "config": dashboard_config()})


async def healthz(request):
    """For load balancers: database, channel layer and PBX link as JSON; no login (see health.py)."""
    status, body = await health.check()
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response
