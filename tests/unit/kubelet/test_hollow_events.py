"""Hollow nodes report no container steps that never happened (as KWOK), but keep warnings."""

from __future__ import annotations

from k8py.kubelet.hollow import ContainerlessEvents


class Recorded:
    def __init__(self):
        self.events = []

    def event(self, obj, type_, reason, message, field_path=None):
        self.events.append((type_, reason, field_path))


def test_container_lifecycle_events_are_not_recorded_on_hollow_nodes():
    inner = Recorded()
    events = ContainerlessEvents(inner)
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    for reason in ("Pulled", "Created", "Started", "Killing"):
        events.event(pod, "Normal", reason, "...", field_path="spec.containers{c}")
    events.event(pod, "Warning", "Failed", "Error: boom", field_path="spec.containers{c}")
    events.event(pod, "Warning", "OutOfcpu", "Node didn't have enough resource: cpu")
    assert inner.events == [("Warning", "Failed", "spec.containers{c}"), ("Warning", "OutOfcpu", None)]
