"""A few past working days of call history for the demo roster (`manage.py seed_demo`), so the
history pages (and anything built on them) have something to show before the simulated PBX has
made its first call. Written only while the history is empty; the same days, calls and numbers
every time (a fixed random seed), ending yesterday.

Some of the trainees' calls were listened to by their curator: those have their audit rows too
(MonitoringSession, spy, ended), so the call page's "who monitored it" is the same as for a live call.
"""

import datetime
import random

from django.db import transaction
from django.utils import timezone

from history.models import CallRecord, Direction

DAYS = 5
SEED = 20261201
FIRST_NAMES = ["Ivan", "Maria", "Alexey", "Natalia", "Oleg", "Tatiana", "Yuri", "Svetlana", "Boris", "Irina"]
LAST_NAMES = ["Volkov", "Morozova", "Novikov", "Fedorova", "Kozlov", "Egorova", "Pavlov", "Orlova"]


def _working_days(today, count):
    days, day = [], today - datetime.timedelta(days=1)
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= datetime.timedelta(days=1)
    return sorted(days)


def _customer(rng):
    return f"7495{rng.randrange(10**7):07d}", f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


@transaction.atomic
def seed_demo_history(roster, *, today=None):
    """Past calls of the demo people (`roster`: accounts.demo.DemoRoster); nothing when there is history already."""
    if CallRecord.objects.exists():
        return 0
    from supervision.models import Kind, MonitoringSession, Outcome

    rng = random.Random(SEED)
    zone = timezone.get_current_timezone()
    today = today or timezone.localdate()
    people = [user for user in roster.users.values() if user.role != "admin"]
    numbers = {user.username: roster.extensions[user.username].resource for user in people}
    records, monitors, sequence = [], [], 0
    for day in _working_days(today, DAYS):
        for user in people:
            extension = roster.extensions[user.username]
            trainee = user.role == "trainee"
            clock = datetime.datetime.combine(day, datetime.time(9, rng.randrange(0, 30)), tzinfo=zone)
            for _ in range(rng.randrange(7, 13) if trainee else rng.randrange(2, 5)):
                clock += datetime.timedelta(minutes=rng.randrange(8, 45), seconds=rng.randrange(60))
                if clock.hour >= 18:
                    break
                sequence += 1
                roll = rng.random()
                direction = Direction.IN if roll < 0.6 else Direction.OUT if roll < 0.9 else Direction.INTERNAL
                if direction == Direction.INTERNAL:
                    colleague = rng.choice([u for u in people if u.pk != user.pk])
                    number, name = numbers[colleague.username], colleague.get_full_name()
                else:
                    number, name = _customer(rng)
                    if direction == Direction.OUT:
                        name = ""  # a number the phone dialled: the PBX gives no name for it
                ring = round(rng.uniform(2, 25), 1)
                answered = rng.random() > 0.12
                talk = round(rng.uniform(25, 420), 1) if answered else 0.0
                cause = 16 if answered else rng.choice([19, 19, 17, 21] if direction == Direction.OUT else [19, 16, 26])
                start = clock
                end = start + datetime.timedelta(seconds=ring + talk)
                uniqueid = f"{int(start.timestamp())}.{900000 + sequence}"
                modes = ""
                if trainee and answered and rng.random() < 0.2:
                    modes = rng.choice(["listen", "listen", "listen,whisper", "listen,barge", "whisper"])
                    began = start + datetime.timedelta(seconds=ring + rng.uniform(5, max(6, talk / 2)))
                    monitors.append((MonitoringSession(
                        kind=Kind.SPY, user=user.curator, user_label=str(user.curator),
                        from_device=roster.extensions[user.curator.username].device,
                        target_user=user, target_label=str(user), target_extension=extension,
                        target_device=extension.device, target_uniqueid=uniqueid,
                        mode=modes.split(",")[-1], modes=modes, reason="ok", outcome=Outcome.ENDED,
                        answered_at=began, spying_started_at=began, ended_at=end), began))
                records.append(CallRecord(
                    uniqueid=uniqueid, linkedid=uniqueid if direction != Direction.IN else f"{int(start.timestamp())}.{800000 + sequence}",
                    channel=f"{extension.device}-{sequence:08x}", device=extension.device, extension=extension,
                    person=user, person_label=str(user), direction=direction, other_number=number, other_name=name,
                    ring_started_at=start, answered_at=start + datetime.timedelta(seconds=ring) if answered else None,
                    ended_at=end, ring_seconds=ring, talk_seconds=talk, hangup_cause=cause,
                    monitored=bool(modes), monitor_modes=modes))
                clock = end
    CallRecord.objects.bulk_create(records)
    for row, began in monitors:
        row.save()
        # requested_at is set on creation (auto_now_add): put it back to when the curator pressed
        MonitoringSession.objects.filter(pk=row.pk).update(requested_at=began - datetime.timedelta(seconds=2))
    return len(records)
