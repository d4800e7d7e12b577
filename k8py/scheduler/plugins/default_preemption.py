"""DefaultPreemption (PostFilter): make room by evicting lower-priority pods.

For every node that failed only for reasons preemption can fix, pretend all
lower-priority pods are gone; if the pod then fits, put back as many as
possible (most important first) and call the rest victims. The node whose
victims matter least wins; the scheduler then deletes them and nominates the
node. Pure logic: the scheduler does the API calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k8py.scheduler.framework import UNRESOLVABLE, CycleState, Diagnosis, Status, unresolvable

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_CANDIDATE_PERCENT, MIN_CANDIDATE_ABSOLUTE = 10, 100


@dataclass
class Candidate:
    node: str
    victims: list = field(default_factory=list)
    pdb_violations: int = 0


@dataclass
class PostFilterResult:
    nominated_node: str | None = None  # None: leave any nomination alone; "": clear it
    victims: list = field(default_factory=list)
    message: str = ""


def terminating_by_preemption(pod) -> bool:
    if not pod.terminating:
        return False
    return any(c.get("type") == "DisruptionTarget" and c.get("reason") == "PreemptionByScheduler"
               for c in (pod.pod.get("status") or {}).get("conditions") or [])


def more_important(a, b) -> bool:
    if a.priority != b.priority:
        return a.priority > b.priority
    return _start(a) < _start(b)


def _start(p) -> str:
    status = p.pod.get("status") or {}
    return status.get("startTime") or (p.pod.get("metadata") or {}).get("creationTimestamp") or ""


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, evictor=None):
        self.evictor = evictor  # kept for API symmetry; the scheduler performs evictions

    def eligible(self, pod, snapshot, node_status: dict) -> str:
        spec = pod.spec
        if spec.get("preemptionPolicy") == "Never":
            return "not eligible due to preemptionPolicy=Never."
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            st = node_status.get(nominated)
            if st is not None and st.code == UNRESOLVABLE:
                return ""
            node = snapshot.by_name.get(nominated)
            if node is not None:
                for p in node.pods.values():
                    if p.priority < pod.priority and terminating_by_preemption(p):
                        return "not eligible due to a terminating pod on the nominated node."
        return ""

    def post_filter(self, profile, pod, snapshot, diagnosis: Diagnosis) -> PostFilterResult:
        reason = self.eligible(pod, snapshot, diagnosis.node_status)
        if reason:
            return PostFilterResult(message=f"preemption: {reason}")
        statuses: dict[str, Status] = {}
        potential = []
        for node in snapshot.nodes:
            st = diagnosis.node_status.get(node.name)
            if st is None or st.code == UNRESOLVABLE:
                statuses[node.name] = unresolvable(NOT_HELPFUL)
            else:
                potential.append(node)
        candidates = []
        limit = max(len(snapshot.nodes) * MIN_CANDIDATE_PERCENT // 100, MIN_CANDIDATE_ABSOLUTE)
        for node in potential:
            victims, st, violations = self.select_victims(profile, pod, node, snapshot)
            if st is not None:
                statuses[node.name] = st
                continue
            candidates.append(Candidate(node.name, victims, violations))
            if len(candidates) >= limit:
                break
        if not candidates:
            from k8py.scheduler.messages import fit_error_message
            d = Diagnosis(node_status=statuses)
            for node in snapshot.nodes:
                d.node_status.setdefault(node.name, unresolvable(NOT_HELPFUL))
            return PostFilterResult(nominated_node="",
                                    message="preemption: " + fit_error_message(len(snapshot.nodes), d))
        best = pick_one(candidates)
        return PostFilterResult(nominated_node=best.node, victims=best.victims)

    def _fits(self, profile, pod, node, snapshot) -> Status | None:
        trial = snapshot.replace(node)
        state = CycleState()
        st, allowed = profile.run_pre_filters(state, pod, trial)
        if st is not None:
            return st
        if allowed is not None and node.name not in allowed:
            return unresolvable(NOT_HELPFUL)
        return profile.run_filters(state, pod, node)

    def select_victims(self, profile, pod, node, snapshot):
        """(victims, failure status, how many victims a PodDisruptionBudget would rather keep)."""
        trial = node.clone()
        lower = [p for p in trial.pods.values() if p.priority < pod.priority]
        if not lower:
            return None, unresolvable(NO_VICTIMS), 0
        for p in lower:
            trial.remove_pod(p.key)
        st = self._fits(profile, pod, trial, snapshot)
        if st is not None:
            return None, st, 0
        # Put back the most important pods first, those a PDB protects before the rest;
        # whoever no longer fits is a victim.
        lower.sort(key=lambda p: (-p.priority, _start(p)))
        violating, other = split_by_pdb(lower, snapshot.listers.get("poddisruptionbudgets", []) or [])
        victims, violations = [], 0
        for group, counts in ((violating, True), (other, False)):
            for p in group:
                trial.add_pod(p)
                if self._fits(profile, pod, trial, snapshot) is not None:
                    trial.remove_pod(p.key)
                    victims.append(p)
                    violations += counts
        victims.sort(key=lambda p: (-p.priority, _start(p)))
        return victims, None, violations


def split_by_pdb(pods: list, pdbs: list[dict]) -> tuple[list, list]:
    """Pods whose eviction would take a PodDisruptionBudget below its allowance, and the rest."""
    from k8py.apimachinery.selectors import selector_from_label_selector
    allowed = [int((pdb.get("status") or {}).get("disruptionsAllowed") or 0) for pdb in pdbs]
    selectors = [selector_from_label_selector((pdb.get("spec") or {}).get("selector")) for pdb in pdbs]
    violating, other = [], []
    for p in pods:
        violated = False
        for i, pdb in enumerate(pdbs):
            sel = selectors[i]
            if (pdb.get("metadata") or {}).get("namespace") != p.namespace or sel is None or sel.empty() \
                    or not sel.matches(p.labels):
                continue
            if p.name in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                continue  # already being disrupted: the API server accounted for it
            allowed[i] -= 1
            if allowed[i] < 0:
                violated = True
        (violating if violated else other).append(p)
    return violating, other


def pick_one(candidates: list[Candidate]) -> Candidate:
    """Fewest PDB violations, then lowest top victim priority, lowest sum, fewest victims, then first."""
    def key(c: Candidate):
        top = max((v.priority for v in c.victims), default=-(2**31))
        total = sum(v.priority + 2**31 + 1 for v in c.victims)
        return (c.pdb_violations, top, total, len(c.victims))
    return min(candidates, key=key)
