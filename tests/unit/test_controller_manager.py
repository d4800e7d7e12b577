"""The controller-manager's --controllers syntax and its Prometheus text."""

import pytest

from k8py.controllers.base import Metrics
from k8py.controllers.manager import CONTROLLERS, load_controller, select_controllers


def test_star_means_every_controller_in_start_order():
    assert select_controllers(None) == list(CONTROLLERS)
    assert select_controllers(["*"]) == list(CONTROLLERS)


def test_names_minus_names_and_aliases():
    assert select_controllers(["deployment,replicaset"]) == ["replicaset", "deployment"]
    assert "podgc" not in select_controllers(["*", "-podgc"])
    assert select_controllers(["garbagecollector"]) == ["garbage-collector"]
    assert select_controllers(["deployment-controller"]) == ["deployment"]


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match='"nope" is not in the list of known controllers'):
        select_controllers(["deployment,nope"])


def test_built_controllers_load_and_missing_ones_are_none():
    assert load_controller("deployment").name == "deployment"
    assert load_controller("garbage-collector").name == "garbage-collector"
    assert load_controller("replicationcontroller").kind == "ReplicationController"


def test_metrics_render_prometheus_text():
    m = Metrics()
    m.describe("workqueue_adds_total", "counter", "Total number of adds handled by workqueue")
    m.inc("workqueue_adds_total", {"name": "deployment"})
    m.inc("workqueue_adds_total", {"name": "deployment"})
    m.gauge("workqueue_depth", {"name": "deployment"}, lambda: 3)
    text = m.render()
    assert "# TYPE workqueue_adds_total counter" in text
    assert 'workqueue_adds_total{name="deployment"} 2' in text
    assert 'workqueue_depth{name="deployment"} 3' in text
