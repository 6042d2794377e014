"""Camera zones and lines through the API, read back by a flow's context."""

from __future__ import annotations

import pytest

from gtvision.flows.tables import CameraZones
from gtvision.operators.geometry import Line, Zone
from gtvision.web.auth import Role
from tests.web.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

GATE = {"kind": "zone", "name": "gate", "points": [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0]]}
ENTRANCE = {"kind": "line", "name": "entrance", "points": [[0.0, 0.6], [1.0, 0.6]]}


async def test_zones_are_validated_stored_and_reach_flows(api: Api) -> None:
    h = api.auth("a", Role.CITY_ADMIN)
    cam = api.world.cameras["a"]
    r = await api.client.patch(f"/cameras/{cam}", json={"zones": [GATE, ENTRANCE]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["zones"] == [GATE, ENTRANCE]
    assert (await api.client.get(f"/cameras/{cam}", headers=h)).json()["zones"] == [GATE, ENTRANCE]
    bad = {**GATE, "points": [[0.1, 0.5], [1.7, 0.5], [0.9, 1.0]]}
    r = await api.client.patch(f"/cameras/{cam}", json={"zones": [bad]}, headers=h)
    assert r.status_code == 422, r.text
    assert "normalised to 0..1" in r.text
    assert "zones" in str(r.json()["errors"][0]["loc"])
    r = await api.client.patch(f"/cameras/{cam}", json={"zones": [GATE, GATE]}, headers=h)
    assert r.status_code == 422
    assert "unique per camera" in r.text
    shapes = CameraZones(api.settings)(cam)
    assert shapes == (Zone.model_validate(GATE), Line.model_validate(ENTRANCE))
    assert CameraZones(api.settings)(987654) == ()
    r = await api.client.patch(f"/cameras/{cam}", json={"zones": []}, headers=h)
    assert r.json()["zones"] == []
