"""The same moves on both channel drivers a real site runs: chan_sip on Asterisk 20, and PJSIP on
Asterisk 22, where the product rings a phone through `Local/<ext>@dashboard-phones` (the dialplan of
deploy/extensions-autoanswer.conf). Fixtures:

- `driver`: "chan_sip" or "pjsip" (tests that use these fixtures run once per driver);
- `driver_pbx`: the simulated PBX of that flavour, its phones answering at once;
- `driver_roster`: the small roster of tests/live_stack.py, its phones on that driver;
- `driver_bridge`: a started bridge with every command module, on its own in-memory layer.
"""

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Extension
from tests.conftest import FAKEPBX_FAST
from tests.live_stack import _roster, started_bridge

FLAVOURS = {"chan_sip": "asterisk20", "pjsip": "asterisk22"}
TECHNOLOGY = {"chan_sip": "SIP", "pjsip": "PJSIP"}
RESOURCES = ("104", "105", "106", "107", "1050")


@pytest.fixture(params=sorted(FLAVOURS))
def driver(request):
    return request.param


def device(driver, resource):
    """`SIP/105` or `PJSIP/105`: how the phone's own channels are named on that driver."""
    return f"{TECHNOLOGY[driver]}/{resource}"


@pytest.fixture
async def driver_pbx(driver):
    from fakepbx import FakePBX

    pbx = FakePBX(port=0, flavour=FLAVOURS[driver], **FAKEPBX_FAST)
    for resource in RESOURCES:
        pbx.set_phone(device(driver, resource), "answer", ring_seconds=0)
    await pbx.start()
    yield pbx
    await pbx.stop()


def _roster_on(driver):
    people, phones = _roster()
    if driver == "pjsip":
        Extension.objects.update(technology="PJSIP", originate_context="dashboard-phones")
        phones = {name: Extension.objects.get(pk=phone.pk) for name, phone in phones.items()}
    return people, phones


@pytest.fixture
async def driver_roster(driver):
    """({username: User}, {username: Extension}) as in tests/live_stack.py's `roster`, on `driver`."""
    return await sync_to_async(_roster_on)(driver)


@pytest.fixture
async def driver_bridge(driver_pbx, driver_roster):
    async with started_bridge(driver_pbx) as bridge:
        yield bridge
