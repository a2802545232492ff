"""MixMonitor in the simulated Asterisk, over real TCP, checked against the captures
(asterisk20-mixmonitor, asterisk22-pjsip-mixmonitor, *-mixmonitor-dialplan, *-mixmonitor-1cami):
the answers, the rights by manager.conf class, the VarSet, the events, and a real WAV on disk."""

import wave

import pytest

from fakepbx import FakePBX
from tests.conftest import FAKEPBX_FAST
from tests.test_fakepbx import RESTRICTED_CONF, Raw

pytestmark = pytest.mark.timeout(30)

FLAVOURS = {"asterisk20": "SIP", "asterisk22": "PJSIP"}


@pytest.fixture(params=sorted(FLAVOURS))
async def pbx(request, tmp_path):
    monitor = tmp_path / "monitor"
    conf = tmp_path / "manager.conf"
    conf.write_text(RESTRICTED_CONF)
    pbx = FakePBX(port=0, flavour=request.param, manager_conf=str(conf), monitor_dir=str(monitor),
                  dialplan_recorded={f"{FLAVOURS[request.param]}/106"}, **FAKEPBX_FAST)
    pbx.technology = FLAVOURS[request.param]
    pbx.monitor = monitor
    for resource in ("104", "105", "106"):
        pbx.set_phone(f"{pbx.technology}/{resource}", "answer", ring_seconds=0)
    await pbx.start()
    yield pbx
    await pbx.stop()


async def admin(pbx):
    conn = await Raw.connect(pbx)
    assert (await conn.login("admin", "adminsecret"))["Message"] == "Authentication accepted"
    return conn


async def trainee_call(pbx, conn):
    """Phone 105 talks to a customer; returns its channel once it is Up."""
    name = await pbx.inbound_call(f"{pbx.technology}/105", "5551234", "Customer")
    up = await conn.event("Newstate", Channel=name, ChannelStateDesc="Up")
    return name, up["Uniqueid"]


def frames_of(path):
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getcomptype()) == (1, 2, 8000, "NONE")
        frames = wav.getnframes()
        data = wav.readframes(frames)
    assert len(data) == 2 * frames
    return frames, data


async def test_the_action_answers_then_varset_then_start_and_the_file_is_written_at_hangup(pbx):
    conn = await admin(pbx)
    name, uniqueid = await trainee_call(pbx, conn)
    path = f"{pbx.monitor}/2026/12/01/{uniqueid}.wav"
    conn.send("MixMonitor", {"Channel": name, "File": path}, "mixmon-1")
    reply = await conn.response("mixmon-1")
    assert reply.pairs == [("Response", "Success"), ("ActionID", "mixmon-1")]  # no Message, no file name
    varset = await conn.event("VarSet", Channel=name, Variable="MIXMONITOR_FILENAME")
    assert varset["Value"] == path and varset["Privilege"] == "dialplan,all" and varset["Uniqueid"] == uniqueid
    start = await conn.event("MixMonitorStart", Channel=name)
    assert start["Privilege"] == "call,all" and start.get("File") is None
    # the order on the wire: the answer, the VarSet, the start
    order = [m for m in conn.messages if m.action_id == "mixmon-1" or m.event in ("VarSet", "MixMonitorStart")]
    assert [m.event or m.response for m in order] == ["Success", "VarSet", "MixMonitorStart"]
    assert frames_of(path)[0] == 0  # the file is there from the start; Asterisk is still writing

    conn.send("Hangup", {"Channel": name}, "hangup-trainee")
    await conn.event("Hangup", Channel=name)
    assert not conn.events("MixMonitorStop")  # a recording that ends with the call has no Stop
    frames, data = frames_of(path)  # complete by the time the Hangup was sent
    assert frames >= 8000 and any(data)  # at least a second, and not silence
    conn.close()


async def test_stop_relative_names_and_every_refusal(pbx):
    conn = await admin(pbx)
    name, uniqueid = await trainee_call(pbx, conn)
    conn.send("StopMixMonitor", {"Channel": name}, "stopmix-none")
    assert (await conn.response("stopmix-none"))["Message"] == "Could not stop monitoring channel"
    conn.send("MixMonitor", {"Channel": f"{pbx.technology}/105-deadbeef", "File": "x.wav"}, "mixmon-nochan")
    assert (await conn.response("mixmon-nochan"))["Message"] == "No such channel"
    conn.send("MixMonitor", {"Channel": name}, "mixmon-nofile")
    assert (await conn.response("mixmon-nofile"))["Message"] == "Could not start monitoring channel"
    conn.send("MixMonitor", {"File": "x.wav"}, "mixmon-nochannel")
    assert (await conn.response("mixmon-nochannel"))["Message"] == "No channel specified"
    assert not conn.events("VarSet") and not conn.events("MixMonitorStart")

    # a name without a folder goes into the monitor folder, and the VarSet says where
    conn.send("MixMonitor", {"Channel": name, "File": f"{uniqueid}-b.wav", "Options": "b"}, "mixmon-b")
    assert (await conn.response("mixmon-b"))["Response"] == "Success"
    varset = await conn.event("VarSet", Variable="MIXMONITOR_FILENAME")
    assert varset["Value"] == f"{pbx.monitor}/{uniqueid}-b.wav"
    conn.send("StopMixMonitor", {"Channel": name}, "stopmix-b")
    assert (await conn.response("stopmix-b")).pairs == [("Response", "Success"), ("ActionID", "stopmix-b")]
    stop = await conn.event("MixMonitorStop", Channel=name)
    assert stop["Uniqueid"] == uniqueid
    frames_of(pbx.monitor / f"{uniqueid}-b.wav")  # a stopped recording is complete at once
    conn.send("StopMixMonitor", {"Channel": name}, "stopmix-again")
    assert (await conn.response("stopmix-again"))["Message"] == "Could not stop monitoring channel"

    # the simulator writes nothing outside its monitor folder
    outside = pbx.monitor.parent / "elsewhere.wav"
    conn.send("MixMonitor", {"Channel": name, "File": str(outside)}, "mixmon-outside")
    assert (await conn.response("mixmon-outside"))["Response"] == "Success"
    conn.send("Hangup", {"Channel": name}, "hangup")
    await conn.event("Hangup", Channel=name)
    assert not outside.exists()
    conn.close()


async def test_the_restricted_user_may_not_record_and_listcommands_says_which_class(pbx):
    """1cami (write=originate): Permission denied for both; MixMonitor needs `system`."""
    conn = await admin(pbx)
    name, _ = await trainee_call(pbx, conn)
    restricted = await Raw.connect(pbx)
    await restricted.login("1cami", "PASSWORD1cami")
    restricted.send("MixMonitor", {"Channel": name, "File": "x.wav"}, "mixmon-1cami")
    assert (await restricted.response("mixmon-1cami"))["Message"] == "Permission denied"
    restricted.send("StopMixMonitor", {"Channel": name}, "stopmix-1cami")
    assert (await restricted.response("stopmix-1cami"))["Message"] == "Permission denied"
    conn.send("ListCommands", {}, "list")
    listed = await conn.response("list")
    assert listed["MixMonitor"] == " (Priv: system,all)" and listed["StopMixMonitor"] == " (Priv: system,call,all)"
    assert not conn.events("VarSet")
    restricted.close()
    conn.close()


async def test_the_sites_own_dialplan_records_and_names_the_file(pbx):
    """Phone 106's calls are recorded by the dialplan: Newexten MixMonitor with the expanded path,
    the VarSet, MixMonitorStart, then the Dial; the file is there after the call."""
    conn = await admin(pbx)
    name = await pbx.inbound_call(f"{pbx.technology}/106", "5557777", "Customer", talk_seconds=0.1)
    newexten = await conn.event("Newexten", Application="MixMonitor")
    recorded = newexten["Channel"]
    varset = await conn.event("VarSet", Channel=recorded, Variable="MIXMONITOR_FILENAME")
    assert varset["Value"] == newexten["AppData"] == f"{pbx.monitor}/{newexten['Uniqueid']}.wav"
    await conn.event("MixMonitorStart", Channel=recorded)
    dial = await conn.event("Newexten", Channel=recorded, Application="Dial")
    assert int(dial["Priority"]) > int(newexten["Priority"])
    await conn.event("Hangup", Channel=name)
    await conn.event("Hangup", Channel=recorded)
    frames_of(varset["Value"])
    conn.close()
