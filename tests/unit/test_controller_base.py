"""What every controller gets from the Controller base without repeating it."""

from __future__ import annotations

from k8py.client import Client
from k8py.controllers.base import ControllerContext
from k8py.controllers.deployment import DeploymentController
from k8py.controllers.disruption import DisruptionController
from k8py.controllers.expectations import ControllerExpectations
from k8py.controllers.job import JobController
from k8py.controllers.replicaset import ReplicaSetController
from k8py.controllers.replicationcontroller import ReplicationManager


def ctx() -> ControllerContext:
    return ControllerContext(Client("https://127.0.0.1:1", token="unused"))  # never contacted here


def test_event_source_defaults_to_name_dash_controller_unless_a_class_names_its_own():
    c = ctx()
    assert DeploymentController(c).recorder.component == "deployment-controller"
    assert JobController(c).recorder.component == "job-controller"
    assert ReplicationManager(c).recorder.component == "replication-controller"
    assert DisruptionController(c).recorder.component == "controllermanager"


def test_expectations_only_for_controllers_that_ask():
    c = ctx()
    assert isinstance(ReplicaSetController(c).expectations, ControllerExpectations)
    assert isinstance(JobController(c).expectations, ControllerExpectations)
    assert DeploymentController(c).expectations is None


async def test_a_controller_with_its_own_client_shares_the_informers_and_recorders():
    """--use-service-account-credentials: a controller writes as itself; the shared informers and
    event recorders keep the manager's client."""
    manager, own = Client("http://127.0.0.1:9"), Client("http://127.0.0.1:9", token="controller")
    ctx = ControllerContext(manager)
    view = ctx.with_client(own)
    assert (view.client, ctx.client) == (own, manager)
    pods = view.informer("v1", "pods")
    assert pods is ctx.informer("v1", "pods") and pods.resource.client is manager
    assert view.recorder("x") is ctx.recorder("x")
    assert view.metrics is ctx.metrics
    await ctx.stop()
