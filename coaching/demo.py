"""The demo's scorecard (seed_demo): site-wide, so every curator may grade with it. Found by its
name; an admin's later edits to it are kept."""

from coaching.models import Criterion, Scorecard

DEMO_SCORECARD = "Inbound call quality"
DEMO_CRITERIA = [
    # name, what to listen for, weight, critical
    ("Greeting", "Company, own name, offer to help within the first seconds.", 1, False),
    ("Verifies the customer", "Asks for the contract number before discussing the account.", 2, True),
    ("Understands the question", "Asks back and restates the customer's need.", 2, False),
    ("Solves or routes it", "A correct answer, or the right transfer with a warm hand-over.", 3, False),
    ("Courtesy and tone", "Polite, calm, no jargon, no interrupting.", 1, False),
    ("Closing", "Sums up, says what happens next, thanks the customer.", 1, False),
]


def seed_demo_scorecard():
    scorecard = Scorecard.objects.filter(name=DEMO_SCORECARD, owner__isnull=True).first()
    if scorecard is not None:
        return scorecard
    scorecard = Scorecard(name=DEMO_SCORECARD, description="The centre's standard for inbound calls.",
                          scale_max=5, pass_threshold=70, good_threshold=85)
    scorecard.full_clean()
    scorecard.save()
    Criterion.objects.bulk_create([
        Criterion(scorecard=scorecard, name=name, description=description, weight=weight, critical=critical,
                  position=index)
        for index, (name, description, weight, critical) in enumerate(DEMO_CRITERIA)
    ])
    return scorecard
