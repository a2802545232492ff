"""The progress pages: a trainee's own (for him, his curator and admins; a 404 for anyone else)
and a curator's team side by side (admins: every trainee, or one curator's)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from accounts.models import Role, User
from progress import pages, stats


@login_required
def index(request):
    """"Progress" in the menu: a trainee's own page, a curator's or admin's team."""
    if request.user.role == Role.TRAINEE:
        return redirect("progress:trainee", pk=request.user.pk)
    return redirect("progress:team")


@login_required
def trainee(request, pk):
    person = stats.viewable_trainee(request.user, pk)
    if person is None:
        raise Http404
    context = pages.trainee_page(stats.trainee_progress(person))
    context["own"] = person.pk == request.user.pk
    return render(request, "progress/trainee.html", context)


@login_required
def team(request):
    user = request.user
    admin = user.is_superuser or user.role == Role.ADMIN
    if not admin and user.role != Role.CURATOR:
        raise Http404
    trainees = stats.team_trainees(user)
    curators, curator = [], None
    if admin:
        curators = list(User.objects.filter(role=Role.CURATOR, is_active=True).order_by("first_name", "last_name",
                                                                                         "username"))
        wanted = request.GET.get("curator", "")
        curator = next((c for c in curators if str(c.pk) == wanted), None)
        if curator is not None:
            trainees = trainees.filter(curator=curator)
    rows, sort, order = stats.sort_rows(stats.team_rows(trainees), request.GET.get("sort"), request.GET.get("order"))
    context = pages.team_page(rows, sort=sort, order=order, show_curator=admin and curator is None)
    context.update(curators=curators, curator=curator, admin=admin)
    return render(request, "progress/team.html", context)
