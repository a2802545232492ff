"""Who may grade whom, read whose evaluations, acknowledge what and edit which scorecard: the one
place coaching rights are decided (in the style of supervision.policy: a Decision with a stable
code and a sentence; every decision re-reads the user, so a reassigned trainee or a permission taken
from a group counts at the very next request).

- grade a call and write coaching notes: the permission `supervision.evaluate` and the role: an
  admin grades any trainee, a curator only his own trainees; nobody grades himself; only trainees
  are graded;
- read a trainee's evaluations and notes: the trainee himself, his curator, admins;
- acknowledge an evaluation or a note: only the trainee it is about;
- edit a scorecard: admins any (in the Django admin or the scorecards page), a curator his own,
  both with the permission.
"""

from django.utils.translation import gettext as _

from accounts.models import Role, User
from supervision.policy import Decision, fresh_user


def _allow():
    return Decision(True, "ok", _("Allowed."))


def _deny(reason, message):
    return Decision(False, reason, message)


def _is_admin(user):
    return user.role == Role.ADMIN or user.is_superuser


def _active(user):
    return user is not None and user.is_active


def may_evaluate(user, trainee):
    """May `user` grade `trainee`'s calls and write notes on them? (`trainee`: a User or an id)"""
    user = fresh_user(user)
    if not _active(user):
        return _deny("inactive", _("Your account is not active."))
    trainee = fresh_user(trainee) if trainee is not None else None
    if trainee is None:
        return _deny("not_found", _("That person does not exist (any more)."))
    if trainee.pk == user.pk:
        return _deny("own_call", _("You cannot grade your own calls."))
    if trainee.role != Role.TRAINEE:
        return _deny("not_a_trainee", _("Only trainees' calls are graded."))
    if not _is_admin(user) and not (user.role == Role.CURATOR and trainee.curator_id == user.pk):
        return _deny("not_your_team", _("%(name)s is not in your team.") % {"name": trainee})
    if not user.has_perm("supervision.evaluate"):
        return _deny("no_permission", _("You do not have the right to grade calls."))
    return _allow()


def may_view(user, trainee):
    """May `user` read `trainee`'s evaluations and notes?"""
    user = fresh_user(user)
    if not _active(user):
        return _deny("inactive", _("Your account is not active."))
    trainee = fresh_user(trainee) if trainee is not None else None
    if trainee is None:
        return _deny("not_found", _("That person does not exist (any more)."))
    if trainee.pk == user.pk or _is_admin(user) or (user.role == Role.CURATOR and trainee.curator_id == user.pk):
        return _allow()
    return _deny("not_your_team", _("%(name)s is not in your team.") % {"name": trainee})


def may_acknowledge(user, item):
    """May `user` acknowledge `item` (an Evaluation or a CoachingNote)? Only its trainee may."""
    user = fresh_user(user)
    if not _active(user):
        return _deny("inactive", _("Your account is not active."))
    if item.trainee_id != user.pk:
        return _deny("not_yours", _("Only the trainee it is about acknowledges it."))
    return _allow()


def may_manage_scorecard(user, scorecard=None):
    """May `user` edit `scorecard` (None: create one)?"""
    user = fresh_user(user)
    if not _active(user):
        return _deny("inactive", _("Your account is not active."))
    if not (_is_admin(user) or user.role == Role.CURATOR):
        return _deny("not_for_role", _("Only curators and admins keep scorecards."))
    if not user.has_perm("supervision.evaluate"):
        return _deny("no_permission", _("You do not have the right to grade calls."))
    if scorecard is not None and not _is_admin(user) and scorecard.owner_id != user.pk:
        return _deny("not_yours", _("Only its owner or an admin edits this scorecard."))
    return _allow()


def visible_trainees(user):
    """Trainees whose evaluations `user` may read: himself (a trainee), his team, everyone (admins)."""
    user = fresh_user(user)
    if not _active(user):
        return User.objects.none()
    if _is_admin(user):
        return User.objects.filter(role=Role.TRAINEE)
    if user.role == Role.CURATOR:
        return User.objects.filter(role=Role.TRAINEE, curator=user)
    return User.objects.filter(pk=user.pk)


def is_grader(user):
    """Curators and admins with the permission: they see the grading forms and the unacknowledged list."""
    return _active(user) and (_is_admin(user) or user.role == Role.CURATOR) and user.has_perm("supervision.evaluate")
