"""Node capacity and allocatable as the kubelet reports them: allocatable is capacity less
the eviction thresholds, subtracted as resource.Quantity does (BinarySI stays BinarySI)."""

from __future__ import annotations

from pathlib import Path

from k8py.kubelet import hostinfo


def test_allocatable_keeps_the_quantity_form_of_capacity(monkeypatch):
    monkeypatch.setattr(hostinfo, "meminfo", lambda: {"MemTotal": 16 * 2**30})
    monkeypatch.setattr(hostinfo, "disk_bytes", lambda path: (100 * 2**30, 50 * 2**30))
    capacity, allocatable = hostinfo.capacity(Path("/unused"), max_pods=110)
    assert capacity["memory"] == "16Gi" and capacity["ephemeral-storage"] == "100Gi"
    # 16Gi less the 100Mi memory.available threshold; 100Gi less 10% for nodefs.available.
    assert allocatable["memory"] == "16284Mi"
    assert allocatable["ephemeral-storage"] == "90Gi"
    assert allocatable["cpu"] == capacity["cpu"] and allocatable["pods"] == "110"


def test_allocatable_is_never_negative(monkeypatch):
    monkeypatch.setattr(hostinfo, "meminfo", lambda: {"MemTotal": 64 * 2**20})
    monkeypatch.setattr(hostinfo, "disk_bytes", lambda path: (0, 0))
    _, allocatable = hostinfo.capacity(Path("/unused"))
    assert allocatable["memory"] == "0" and allocatable["ephemeral-storage"] == "0"
