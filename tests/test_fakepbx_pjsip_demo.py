"""The PJSIP demo: `seed_demo --pjsip` (what `make run PBX=pjsip` seeds) and the simulator's
demo day in the asterisk22 flavour."""

import pytest
from django.core.management import call_command

from accounts.models import Extension


@pytest.mark.django_db
def test_seed_pjsip_converts_the_demo_phones_to_the_local_route_and_back(capsys):
    call_command("seed_demo")
    call_command("seed_demo", "--pjsip")
    assert Extension.objects.count() == 8
    for extension in Extension.objects.all():
        assert (extension.technology, extension.originate_context, extension.phone_preset) == (
            "PJSIP", "dashboard-phones", "call-info")
    lebedev = Extension.objects.get(user__username="lebedev")
    assert (lebedev.device, lebedev.dial_string) == ("PJSIP/105", "Local/105@dashboard-phones")
    assert lebedev.autoanswer_variables() == ["AUTOANSWER=call-info"]
    assert "PJSIP/105" in capsys.readouterr().out
    call_command("seed_demo")
    assert Extension.objects.count() == 8
    assert {e.device for e in Extension.objects.all()} == {f"SIP/{r}" for r in (101, 102, 103, 104, 105, 200, 201, 202)}


async def test_the_demo_day_on_asterisk_22_has_calls_a_spy_can_reach_through_the_local_route():
    from fakepbx import FakePBX
    from tests.conftest import FAKEPBX_FAST
    from tests.test_fakepbx import Raw

    pbx = FakePBX(port=0, scenario="demo", flavour="asterisk22", seed=7,
                  demo_options={"interval": 0.05, "talk_min": 30, "talk_max": 30}, **FAKEPBX_FAST)
    for resource in ("101", "102", "103", "201"):
        pbx.set_phone(f"PJSIP/{resource}", "autoanswer", ring_seconds=0.05)
    await pbx.start()
    try:
        conn = await Raw.connect(pbx)
        await conn.login()
        placed = await conn.event("BridgeEnter", Context="from-internal", Priority="2")
        assert placed["Channel"].startswith("PJSIP/10") and placed["Exten"].startswith("555")
        await conn.wait_for(lambda m: m.event == "BridgeEnter" and m["Channel"].startswith("PJSIP/trunk-"))  # and in
        conn.send("Originate", [("Channel", "Local/201@dashboard-phones"), ("Application", "ChanSpy"),
                                ("Data", f"{placed['Channel']},qx"), ("CallerID", "Spy <201>"), ("Async", "true"),
                                ("Variable", "AUTOANSWER=call-info")], "spy")
        spy = await conn.event("OriginateResponse", ActionID="spy")
        start = await conn.event("ChanSpyStart", SpyerChannel=spy["Channel"])
        assert start["SpyeeChannel"] == placed["Channel"]
        conn.close()
    finally:
        await pbx.stop()
