"""axe-core in the test browser: the accessibility check every page of the product passes.

axe-core comes with the `axe-playwright-python` package (no download at run time) and is injected
through Playwright's evaluate, which the DevTools protocol runs outside the page's
Content-Security-Policy: the pages keep their strict policy during the check (no bypass_csp).
"""

from axe_playwright_python.sync_playwright import Axe

# Serious and critical violations fail a page; moderate and minor ones are reported, not fatal
# (e.g. the Django admin's tabular inline leaves its first column header empty).
FATAL_IMPACTS = ("serious", "critical")

_AXE = Axe()


def violations(page):
    """Every axe violation on the page as it is now: [(impact, rule, help, [targets])]."""
    result = _AXE.run(page)
    return [
        (item["impact"], item["id"], item["help"], [node["target"] for node in item["nodes"]])
        for item in result.response["violations"]
    ]


def fatal_violations(page):
    return [violation for violation in violations(page) if violation[0] in FATAL_IMPACTS]


def describe(found):
    return "\n".join(f"{impact} {rule}: {words} at {targets[:5]}" for impact, rule, words, targets in found)
