"""The dashboard's thresholds are site settings: read from the environment, handed to the page,
and a bad value stops the start with its name."""

import pytest

from supervision.views import dashboard_config
from tests.test_settings import run_django


@pytest.mark.parametrize("name,value,why", [
    ("LONG_RING_SECONDS", "soon", "LONG_RING_SECONDS='soon' is not an integer"),
    ("LONG_RING_SECONDS", "0", "LONG_RING_SECONDS=0 is outside 1..86400"),
    ("LONG_CALL_SECONDS", "-5", "LONG_CALL_SECONDS=-5 is outside 1..86400"),
    ("STATUS_LINE_SECONDS", "1.5", "STATUS_LINE_SECONDS='1.5' is not an integer"),
])
def test_a_bad_threshold_stops_the_start_with_its_name(tmp_path, name, value, why):
    result = run_django(tmp_path, ["-c", "import django; django.setup()"], **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and why in result.stderr


def test_the_page_gets_the_sites_thresholds(tmp_path):
    code = "import django; django.setup(); from supervision.views import dashboard_config; print(dashboard_config())"
    result = run_django(tmp_path, ["-c", code], LONG_RING_SECONDS="45", LONG_CALL_SECONDS="900", STATUS_LINE_SECONDS="30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'long_ring_seconds': 45, 'long_call_seconds': 900, 'status_line_seconds': 30}"


def test_the_defaults(settings):
    assert dashboard_config() == {"long_ring_seconds": 20, "long_call_seconds": 600, "status_line_seconds": 120}
