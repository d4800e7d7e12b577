"""The node IPAM controller hands every Node its own podCIDR."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from k8py.client import Client
from k8py.controllers.base import ControllerContext
from k8py.controllers.nodeipam import NodeIpamController, first_free_block
from tests.unit.conftest import TOKEN


def test_first_free_block_skips_overlaps_and_other_ranges():
    assert first_free_block("10.42.0.0/16", 24, []) == "10.42.0.0/24"
    assert first_free_block("10.42.0.0/16", 24, ["10.42.0.0/24", "10.42.1.0/24"]) == "10.42.2.0/24"
    # a wider block someone set by hand covers several /24s; other ranges and junk don't count
    assert first_free_block("10.42.0.0/16", 24, ["10.42.0.0/23", "10.99.2.0/24", "nonsense",
                                                  "fd00::/64"]) == "10.42.2.0/24"
    assert first_free_block("10.42.0.0/23", 24, ["10.42.0.0/24", "10.42.1.0/24"]) is None
    assert first_free_block("10.42.0.0/24", 16, []) is None


@pytest.fixture
async def api(client):
    c = Client(str(client.make_url("")), token=TOKEN)
    yield c
    await c.close()


async def run_controller(api, options):
    ctx = ControllerContext(api)
    ctx.options = options
    try:
        await NodeIpamController(ctx).run()
    finally:
        await ctx.stop()


async def eventually(fetch, condition, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        got = await fetch()
        if condition(got):
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition never held (last: {got!r})")


def node(name, cidr=None):
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    if cidr:
        obj["spec"] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    return obj


async def test_nodes_joining_together_get_distinct_blocks_and_a_deleted_one_is_reused(api):
    nodes = api.resource("v1", "nodes")
    await nodes.create(node("first", "10.42.0.0/24"))
    task = asyncio.create_task(run_controller(api, {"allocate_node_cidrs": True, "cluster_cidr": "10.42.0.0/16"}))
    try:
        await asyncio.gather(*(nodes.create(node(f"n{i}")) for i in range(5)))

        async def cidrs():
            return {n["metadata"]["name"]: (n.get("spec") or {}).get("podCIDR")
                    for n in (await nodes.list())["items"]}
        got = await eventually(cidrs, lambda c: all(c.values()))
        assert got["first"] == "10.42.0.0/24"
        assert sorted(got.values()) == [f"10.42.{i}.0/24" for i in range(6)]
        one = await nodes.get("n0")
        assert one["spec"]["podCIDRs"] == [one["spec"]["podCIDR"]]

        freed = got["n2"]
        await nodes.delete("n2")
        await nodes.create(node("late"))
        late = await eventually(lambda: nodes.get("late"), lambda n: (n.get("spec") or {}).get("podCIDR"))
        assert late["spec"]["podCIDR"] == freed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_full_range_is_an_event_and_allocation_off_leaves_nodes_alone(api):
    nodes = api.resource("v1", "nodes")
    await nodes.create(node("only", "10.42.0.0/24"))
    task = asyncio.create_task(run_controller(api, {"allocate_node_cidrs": True, "cluster_cidr": "10.42.0.0/24"}))
    try:
        await nodes.create(node("extra"))
        events = api.resource("v1", "events", "default")
        got = await eventually(events.list, lambda e: any(x["reason"] == "CIDRNotAvailable" for x in e["items"]))
        event = next(x for x in got["items"] if x["reason"] == "CIDRNotAvailable")
        assert event["involvedObject"]["name"] == "extra"
        assert event["message"] == "Node extra status is now: CIDRNotAvailable"
        assert not (await nodes.get("extra")).get("spec", {}).get("podCIDR")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)



async def test_without_allocate_node_cidrs_nodes_are_left_alone(api):
    nodes = api.resource("v1", "nodes")
    await nodes.create(node("unmanaged"))
    ctx = ControllerContext(api)
    ctx.options = {"cluster_cidr": "10.42.0.0/16"}      # no allocate_node_cidrs, as upstream's default
    controller = NodeIpamController(ctx)
    try:
        await controller.setup()
        await ctx.start_informers()
        assert controller.nodes.get("unmanaged") is not None
        await controller.sync("unmanaged")
        assert not (await nodes.get("unmanaged")).get("spec", {}).get("podCIDR")
        assert len(controller.queue) == 0          # nothing was queued by the node's arrival either
    finally:
        await ctx.stop()


def test_first_free_block_in_a_nearly_full_large_range():
    base = int(ipaddress.ip_address("10.0.0.0"))
    taken = [str(ipaddress.ip_network((base + i * 256, 24))) for i in range(65535)]   # all /24s of 10/8 but the last
    assert first_free_block("10.0.0.0/8", 24, taken) == "10.255.255.0/24"
    assert first_free_block("10.0.0.0/8", 24, taken + ["10.255.255.128/25"]) is None
    # A larger network over part of the range takes every block inside it.
    assert first_free_block("10.42.0.0/16", 24, ["10.42.0.0/17"]) == "10.42.128.0/24"
    assert first_free_block("10.42.0.0/16", 24, ["10.0.0.0/8"]) is None
