"""The outbox relay on a 3-node RabbitMQ cluster: quorum queues, and a node killed mid-stream.

The module boots three private RabbitMQ nodes that form one cluster (classic-config peer
discovery, one cookie). The relay gets every node's URL (``GTV_AMQP_URL`` list) and owns one
queue (``GTV_AMQP_QUEUES``), which it declares as a quorum queue. Killing the node the relay
publishes through must not lose an event: it moves to another node and carries on.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from gtvision.sinks.amqp import QueueBinding
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.sinks.relay import OutboxRelay, RelayConfig
from tests.conftest import free_port

from .amqp_util import Received, backlog, drain
from .conftest import plate_pass
from .services import PrivateRabbit, rabbit_node

QUEUE = "gtvision.test-all"


@pytest.fixture(scope="module")
def rabbits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[PrivateRabbit]]:
    base = tmp_path_factory.mktemp("rabbit-cluster")
    ports = [(free_port(), free_port()) for _ in range(3)]
    peers = [rabbit_node(port) for port, _ in ports]
    cookie = uuid.uuid4().hex.upper()
    nodes = [
        PrivateRabbit(base / str(i), port, dist, peers, cookie)
        for i, (port, dist) in enumerate(ports)
    ]
    try:
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait_started()
        deadline = time.monotonic() + 60
        while len(running_nodes(nodes[0])) < 3:
            assert time.monotonic() < deadline, nodes[0].ctl("cluster_status")
            time.sleep(0.5)
        yield nodes
    finally:
        for node in nodes:  # scratch nodes: no need for a clean shutdown
            node.kill()


def running_nodes(node: PrivateRabbit) -> list[str]:
    status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
    return list(status.get("running_nodes", []))


@pytest.mark.asyncio(loop_scope="session")
async def test_relay_moves_to_another_node_when_its_node_dies_and_loses_nothing(
    fresh_pg_dsn: str, rabbits: list[PrivateRabbit]
) -> None:
    config = RelayConfig(
        fresh_pg_dsn, ",".join(n.url for n in rabbits), batch=50, poll_s=0.1,
        backoff_cap_s=1.0, confirm_timeout_s=5.0, queues=(QueueBinding(QUEUE, "#"),),
    )  # fmt: skip
    relay = OutboxRelay(config)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    written: list[str] = []
    producing = True

    def produce() -> None:
        with open_pool(fresh_pg_dsn) as pool:
            writer = EventWriter(pool, None, None)
            i = 0
            while producing:
                batch = [plate_pass(i + k, crop=False) for k in range(5)]
                writer.write(batch)
                written.extend(e.id for e in batch)
                i += 5
                time.sleep(0.1)

    producer = asyncio.create_task(asyncio.to_thread(produce))
    try:
        for _ in range(300):
            if relay.sent >= 50:
                break
            await asyncio.sleep(0.1)
        assert relay.sent >= 50, "the relay did not start publishing"
        killed = relay.node
        await asyncio.to_thread(rabbits[killed].kill)
        killed_at = time.monotonic()
        await asyncio.sleep(5)
        producing = False
        await producer
        for _ in range(600):
            if backlog(fresh_pg_dsn) == 0:
                break
            await asyncio.sleep(0.1)
        caught_up = time.monotonic() - killed_at
        assert backlog(fresh_pg_dsn) == 0
    finally:
        producing = False
        stop.set()
        await asyncio.wait_for(running, 30)
        await relay.close()
    assert relay.node != killed
    survivor = rabbits[relay.node]
    queues = survivor.ctl("list_queues", "name", "type", "durable", "--formatter", "json")
    info = {q["name"]: q for q in json.loads(queues)}
    assert info[QUEUE]["type"] == "quorum"
    assert info[QUEUE]["durable"] is True
    received = Received()
    await drain(survivor.url, QUEUE, received, passive=True)
    got = received.ids
    duplicates = sum(n - 1 for n in got.values())
    print(  # figures for the CI log
        f"\nrelay on a 3-node cluster: {len(written)} events, node {killed + 1} killed; backlog "
        f"empty {caught_up:.1f} s after the kill; received {len(got)} unique, {duplicates} "
        f"duplicates by message_id (at-least-once), {relay.failed} unconfirmed attempts"
    )
    assert len(written) == len(set(written))
    assert set(got) == set(written)


def test_cluster_settings_are_checked_and_masked() -> None:
    from gtvision.config import ConfigError, load_settings, mask_url

    urls = "amqp://u:pw1@mq-0:5672/v,amqp://u:pw2@mq-1:5672/v"
    settings = load_settings(amqp_url=urls, amqp_queues="a.b=alert.triggered.#, all=#")
    config = RelayConfig.from_settings(settings)
    assert config.queues == (QueueBinding("a.b", "alert.triggered.#"), QueueBinding("all", "#"))
    assert mask_url(urls) == "amqp://u:***@mq-0:5672/v,amqp://u:***@mq-1:5672/v"
    with pytest.raises(ConfigError, match=r"GTV_AMQP_QUEUES.*expected queue=pattern"):
        load_settings(amqp_queues="just-a-name")
    with pytest.raises(ConfigError, match="GTV_AMQP_URL"):
        load_settings(amqp_url="amqp://h/v,http://h/v")
