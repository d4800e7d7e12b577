"""ControllerExpectations: counting creates, tracking deletes by uid, expiry."""

from k8py.controllers.expectations import ControllerExpectations
from k8py.controllers.ownership import controller_ref, is_controlled_by, new_controller_ref


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_creations_must_all_be_observed():
    exp = ControllerExpectations()
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs") and exp.pending("ns/rs") == (1, 0)
    exp.creation_failed("ns/rs")
    assert exp.satisfied("ns/rs")


def test_deletions_are_tracked_by_uid_so_repeats_do_not_count_twice():
    exp = ControllerExpectations()
    exp.expect_deletions("ns/rs", ["a", "b"])
    exp.deletion_observed("ns/rs", "a")
    exp.deletion_observed("ns/rs", "a")  # the final DELETED event after the deletionTimestamp update
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "c")  # someone else's pod
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "b")
    assert exp.satisfied("ns/rs")


def test_expectations_expire_after_five_minutes():
    clock = Clock()
    exp = ControllerExpectations(clock=clock)
    exp.expect_creations("ns/rs", 5)
    clock.now = 299
    assert not exp.satisfied("ns/rs")
    clock.now = 301
    assert exp.satisfied("ns/rs")


def test_forget_drops_the_record():
    exp = ControllerExpectations()
    exp.expect_creations("k", 1)
    exp.forget("k")
    assert exp.satisfied("k") and exp.pending("k") == (0, 0)


def test_controller_ref_helpers():
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "uid": "u1"}}
    ref = new_controller_ref(owner)
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1",
                   "controller": True, "blockOwnerDeletion": True}
    pod = {"metadata": {"ownerReferences": [{"uid": "x", "kind": "Foo"}, ref]}}
    assert controller_ref(pod) == ref and is_controlled_by(pod, owner)
    assert controller_ref({"metadata": {"ownerReferences": [{"uid": "x"}]}}) is None
