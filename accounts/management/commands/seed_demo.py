"""`manage.py seed_demo`: the demo roster (see accounts/demo.py), safe to run again."""

from django.core.management.base import BaseCommand

from accounts.demo import seed_demo_roster


class Command(BaseCommand):
    help = "Create the demo roster (admin, 2 curators, 5 trainees, SIP or PJSIP extensions) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Set the demo passwords again on existing demo users."
        )
        parser.add_argument(
            "--history", action="store_true",
            help="Also a few past working days of call history (with some calls listened to, and their audit "
                 "rows) for the demo people, while the history is empty (`make run` does this).",
        )
        parser.add_argument(
            "--pjsip", action="store_true",
            help="PJSIP phones reached through Local/<ext>@dashboard-phones (converts the demo SIP phones); "
                 "without it the demo phones are chan_sip ones again.",
        )

    def handle(self, *args, reset_passwords=False, pjsip=False, history=False, **options):
        roster = seed_demo_roster(reset_passwords=reset_passwords, pjsip=pjsip)
        if history:
            from history.demo import seed_demo_history

            calls = seed_demo_history(roster)
            self.stdout.write(f"Call history: {calls} past calls added" if calls else
                              "Call history: already there, left as it is")
        if roster.created:
            self.stdout.write(self.style.SUCCESS(f"Created demo users: {', '.join(roster.created)}"))
        if len(roster.created) < len(roster.users):
            existing = [name for name in roster.users if name not in roster.created]
            changed = "passwords reset" if reset_passwords else "passwords unchanged"
            self.stdout.write(f"Already there ({changed}): {', '.join(existing)}")
        for note in roster.notes:
            self.stdout.write(self.style.WARNING(note))
        self.stdout.write("")
        self.stdout.write(f"{'login':<12} {'password':<18} {'role':<8} {'phone':<8} curator")
        for username, user in roster.users.items():
            extension = roster.extensions[username]
            curator = user.curator.username if user.curator else ""
            password = roster.passwords[username]
            self.stdout.write(f"{username:<12} {password:<18} {user.role:<8} {extension.device:<8} {curator}")
        recording = roster.recording
        self.stdout.write(f"Training library: “{recording.title}” ({recording.path}), shared with {recording.sharing}")
        scorecard = roster.scorecard
        self.stdout.write(f"Scorecard: “{scorecard.name}” ({scorecard.criteria.count()} criteria), for every curator")
        if not reset_passwords and len(roster.created) < len(roster.users):
            self.stdout.write("Existing users keep their password; --reset-passwords sets the demo ones again.")
