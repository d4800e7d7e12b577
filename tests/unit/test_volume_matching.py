"""The binder's choice of volume for a claim (k8py/api/volume_matching.py)."""

from __future__ import annotations

import pytest

from k8py.api import volume_matching as matching


def pv(name, size="1Gi", modes=("ReadWriteOnce",), phase="Available", labels=None, sc=None, mode=None,
       claim_ref=None, annotations=None, affinity=None, deleting=False):
    spec = {"capacity": {"storage": size}, "accessModes": list(modes)}
    if sc is not None:
        spec["storageClassName"] = sc
    if mode:
        spec["volumeMode"] = mode
    if claim_ref:
        spec["claimRef"] = claim_ref
    if affinity:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": affinity}]}}
    meta = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def pvc(name="c", size="1Gi", modes=("ReadWriteOnce",), sc=None, selector=None, mode=None, annotations=None,
        uid="u1"):
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    if selector is not None:
        spec["selector"] = selector
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "annotations": annotations or {}},
            "spec": spec}


def best(claim, volumes, **kw):
    found = matching.find_best_match(claim, volumes, **kw)
    return found["metadata"]["name"] if found else None


def test_the_smallest_volume_that_is_big_enough_wins():
    volumes = [pv("big", "10Gi"), pv("small", "500Mi"), pv("fits", "2Gi"), pv("exact", "1Gi")]
    assert best(pvc(size="1Gi"), volumes) == "exact"
    assert best(pvc(size="1.5Gi"), volumes) == "fits"
    assert best(pvc(size="20Gi"), volumes) is None


def test_access_modes_must_all_be_offered_and_the_closest_mode_set_comes_first():
    volumes = [pv("rwo-rwx-small", "1Gi", ("ReadWriteOnce", "ReadWriteMany")), pv("rwo-big", "5Gi")]
    # Upstream indexes by access modes: the exact mode set is tried before a wider, smaller volume.
    assert best(pvc(), volumes) == "rwo-big"
    assert best(pvc(modes=("ReadWriteMany",)), volumes) == "rwo-rwx-small"
    assert best(pvc(modes=("ReadOnlyMany",)), volumes) is None


def test_storage_class_empty_unset_and_the_beta_annotation():
    volumes = [pv("none", "1Gi"), pv("fast", "1Gi", sc="fast"),
               pv("beta", "2Gi", annotations={matching.BETA_STORAGE_CLASS: "slow"})]
    assert best(pvc(), volumes) == "none"             # unset: only class-less volumes
    assert best(pvc(sc=""), volumes) == "none"        # "": the same
    assert best(pvc(sc="fast"), volumes) == "fast"
    assert best(pvc(sc="slow"), volumes) == "beta"    # the volume's legacy annotation counts
    # The claim's legacy annotation wins over its storageClassName.
    assert best(pvc(sc="fast", annotations={matching.BETA_STORAGE_CLASS: "slow"}), volumes) == "beta"
    assert best(pvc(sc="other"), volumes) is None


def test_volume_mode_must_be_equal_with_filesystem_the_default():
    volumes = [pv("block", mode="Block"), pv("fs", "2Gi")]
    assert best(pvc(), volumes) == "fs"
    assert best(pvc(mode="Block"), volumes) == "block"
    assert best(pvc(mode="Filesystem"), [pv("block", mode="Block")]) is None


def test_label_selector_match_labels_and_expressions():
    volumes = [pv("nfs", "2Gi", labels={"app": "nfs", "tier": "gold"}), pv("other", "1Gi", labels={"app": "x"})]
    assert best(pvc(selector={"matchLabels": {"app": "nfs"}}), volumes) == "nfs"
    assert best(pvc(selector={"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]}),
                volumes) == "nfs"
    assert best(pvc(selector={"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                volumes) == "other"
    assert best(pvc(selector={"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["nfs", "x"]}]}),
                volumes) is None
    with pytest.raises(matching.SelectorError, match='"Gt" is not a valid label selector operator'):
        matching.find_best_match(pvc(selector={"matchExpressions": [{"key": "a", "operator": "Gt",
                                                                     "values": ["1"]}]}), volumes)


def test_only_available_unclaimed_and_undeleted_volumes_are_taken():
    other = {"name": "someone", "namespace": "ns", "uid": "u9"}
    volumes = [pv("released", phase="Released"), pv("taken", claim_ref=other),
               pv("going", deleting=True), pv("pending", phase="Pending")]
    assert best(pvc(), volumes) is None
    assert best(pvc(), volumes + [pv("free", "3Gi")]) == "free"


def test_a_volume_pre_bound_to_the_claim_wins_whatever_its_phase_or_labels():
    mine = {"name": "c", "namespace": "ns"}
    volumes = [pv("exact", "1Gi"), pv("reserved", "8Gi", phase="Pending", claim_ref=mine)]
    claim = pvc(selector={"matchLabels": {"nothing": "matches"}})
    assert best(claim, volumes) == "reserved"
    assert best(pvc(size="9Gi"), volumes) is None  # but it must be big enough
    # With a uid, the reservation holds only for that very claim.
    volumes[1]["spec"]["claimRef"]["uid"] = "other-uid"
    assert best(pvc(), volumes) == "exact"


def test_node_affinity_counts_only_on_the_schedulers_path_and_delay_binding_waits_for_it():
    node_a = {"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}}}
    node_b = {"metadata": {"name": "b", "labels": {"kubernetes.io/hostname": "b"}}}
    local = pv("local-a", affinity=[{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}])
    assert best(pvc(), [local]) == "local-a"
    assert best(pvc(), [local], node=node_a) == "local-a"
    assert best(pvc(), [local], node=node_b) is None
    assert best(pvc(), [local], delay_binding=True) is None
    assert best(pvc(), [local], delay_binding=True, node=node_a) == "local-a"


def test_why_a_named_volume_does_not_fit():
    claim = pvc(size="2Gi", sc="fast", modes=("ReadWriteMany",))
    assert matching.unsatisfied_reason(pv("v", "1Gi", sc="fast"), claim) == "requested PV is too small"
    assert matching.unsatisfied_reason(pv("v", "2Gi"), claim) == "storageClassName does not match"
    assert matching.unsatisfied_reason(pv("v", "2Gi", sc="fast", mode="Block"), claim) == "incompatible volumeMode"
    assert matching.unsatisfied_reason(pv("v", "2Gi", sc="fast"), claim) == "incompatible accessMode"
    assert matching.unsatisfied_reason(pv("v", "2Gi", sc="fast", deleting=True), claim) == \
        'the volume is marked for deletion "v"'
    assert matching.unsatisfied_reason(pv("v", "2Gi", sc="fast", modes=("ReadWriteMany",)), claim) is None


def test_the_binders_index_chooses_what_find_best_match_chooses():
    """AvailableVolumes (the binder's sorted index) must pick, for every claim, the volume the
    plain rules pick from all of them: same access-mode group order, smallest fit, selector,
    volumeMode, class; volumes bound or not Available are never offered."""
    import random
    from k8py.controllers.volume.available import AvailableVolumes
    rng = random.Random(12)
    mode_sets = [["ReadWriteOnce"], ["ReadWriteOnce", "ReadWriteMany"], ["ReadOnlyMany"],
                 ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"]]
    volumes = []
    for i in range(300):
        volume = {"metadata": {"name": f"pv-{i:03d}", "labels": {"tier": rng.choice(["a", "b"])}},
                  "spec": {"capacity": {"storage": f"{rng.randint(1, 40)}Gi"}, "accessModes": rng.choice(mode_sets),
                           "storageClassName": rng.choice(["", "fast"]),
                           "volumeMode": rng.choice(["Filesystem", "Filesystem", "Block"])},
                  "status": {"phase": rng.choice(["Available"] * 5 + ["Pending", "Bound"])}}
        if rng.random() < 0.1:
            volume["spec"]["claimRef"] = {"namespace": "ns", "name": "someone"}
        volumes.append(volume)
    index = AvailableVolumes()
    for volume in volumes:
        index.update(volume)
    by_name = {v["metadata"]["name"]: v for v in volumes}
    for i in range(300):
        claim = {"metadata": {"name": f"c{i}", "namespace": "ns"},
                 "spec": {"accessModes": rng.choice(mode_sets[:3]), "storageClassName": rng.choice(["", "fast"]),
                          "resources": {"requests": {"storage": f"{rng.randint(1, 45)}Gi"}},
                          "volumeMode": rng.choice(["Filesystem", "Block"])}}
        if rng.random() < 0.3:
            claim["spec"]["selector"] = {"matchLabels": {"tier": "a"}}
        expected = matching.find_best_match(claim, volumes)
        chosen = next((by_name[n] for n in index.candidates(claim)
                       if matching.find_best_match(claim, [by_name[n]]) is by_name[n]), None)
        assert chosen is expected, (claim, chosen and chosen["metadata"]["name"],
                                    expected and expected["metadata"]["name"])
        if expected is not None and rng.random() < 0.5:    # bind it: gone from the index
            expected["spec"]["claimRef"] = {"namespace": "ns", "name": claim["metadata"]["name"]}
            index.update(expected)
    assert len(index) == sum(1 for v in volumes if v["status"]["phase"] == "Available" and "claimRef" not in v["spec"])
