"""GET /healthz: database, channel layer and PBX link for a load balancer, without a login and
without secrets. 200 while the web tier works ("ok", or "degraded" with the PBX away); 503 when
the database or the channel layer does not answer."""

import json

import pytest
from django.db.utils import OperationalError
from django.test import AsyncClient, override_settings

from supervision import bridge_host, health
from tests.live_stack import channel_layer, live_bridge, wait_for  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


async def get_health():
    response = await AsyncClient().get("/healthz")
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)


def assert_no_secrets(body):
    text = json.dumps(body)
    for secret in ("dashboard-demo", "dashboard", "127.0.0.1", "5038", "logged in"):
        assert secret not in text


@pytest.fixture
def embedded(live_bridge, monkeypatch):
    monkeypatch.setattr(bridge_host, "_embedded", live_bridge.bridge)
    return live_bridge


async def test_all_fine_is_ok_without_a_login(embedded):
    status, body = await get_health()
    assert status == 200
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["channel_layer"] == {"ok": True}
    assert body["pbx"]["state"] == "up" and body["pbx"]["resync"] == "done"
    assert body["bridge"] == "embedded"
    assert_no_secrets(body)


async def test_the_pbx_away_is_degraded_but_still_200(embedded):
    await embedded.pbx.stop()
    await wait_for(lambda: embedded.bridge.client.link.state != "up")
    status, body = await get_health()
    assert status == 200
    assert body["status"] == "degraded"
    assert body["pbx"]["state"] in ("down", "connecting")
    assert body["pbx"]["since"] is not None
    assert_no_secrets(body)


async def test_external_bridge_is_asked_over_the_channel_layer(live_bridge):
    with override_settings(AMI_BRIDGE="external"):
        status, body = await get_health()
    assert (status, body["status"], body["pbx"]["state"]) == (200, "ok", "up")


async def test_external_bridge_not_running_is_no_bridge(channel_layer):
    with override_settings(AMI_BRIDGE="external"):
        status, body = await get_health()
    assert (status, body["status"], body["pbx"]["state"]) == (200, "degraded", "no_bridge")


async def test_embedded_bridge_not_started_yet_and_bridge_off(channel_layer, monkeypatch):
    monkeypatch.setattr(bridge_host, "_embedded", None)
    assert (await health.pbx_link(channel_layer))["state"] == "no_bridge"
    with override_settings(AMI_BRIDGE="off"):
        status, body = await get_health()
    assert (status, body["status"], body["pbx"]["state"]) == (200, "degraded", "off")


async def test_database_down_is_503(embedded, monkeypatch):
    def broken():
        raise OperationalError("could not connect to server at db.internal:5432 password=hunter2")

    monkeypatch.setattr(health, "_database_ok", broken)
    status, body = await get_health()
    assert status == 503
    assert body["status"] == "down"
    assert body["database"] == {"ok": False, "error": "OperationalError"}
    assert "hunter2" not in json.dumps(body) and "db.internal" not in json.dumps(body)


async def test_channel_layer_down_is_503(embedded):
    closed = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [closed]}}}
    with override_settings(CHANNEL_LAYERS=layers):
        status, body = await get_health()
    assert status == 503
    assert body["status"] == "down"
    assert body["channel_layer"]["ok"] is False
    assert body["pbx"]["state"] == "unknown"
    assert "127.0.0.1" not in json.dumps(body)
