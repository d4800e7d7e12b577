"""Every node's node-local filter verdict and weighted score for one pod shape, kept current.

A plain pod's cycle is dominated by visiting the ~40 % of nodes upstream's
percentageOfNodesToScore asks for, once to filter and once to score, even
when each answer is remembered per node. A NodeTable holds those answers as
two lists aligned with the cache's node list and brings them up to date from
the cache's change log (only the nodes that changed since the last cycle are
recomputed). A cycle then takes upstream's round-robin window of feasible
nodes as list slices: the same nodes, in the same order, with the same
scores, as walking the nodes one by one.
"""

from __future__ import annotations

from bisect import bisect_left, insort

MAX_TABLES = 4  # pod shapes remembered at once (each holds two lists the size of the cluster)


class NodeTable:
    __slots__ = ("nodes", "positions", "filters", "scorers", "status", "scores", "infeasible", "epoch", "position")

    def __init__(self, nodes: list, positions: dict[str, int], filters: list, scorers: list[tuple]):
        self.nodes = nodes              # the cache's node list this table is aligned with
        self.positions = positions      # node name -> index in `nodes`
        self.filters = filters          # node-local filter plugins, in profile order
        self.scorers = scorers          # (plugin, weight): node-local scores summed without normalizing
        self.status: list = []          # per node: None (fits) or the rejecting Status
        self.scores: list = []          # per node: weighted sum of `scorers` (None where rejected)
        self.infeasible: list[int] = []  # sorted indices of rejected nodes
        self.epoch = -1
        self.position = 0

    def _compute(self, state, pod, node) -> tuple:
        for p in self.filters:
            st = p.filter(state, pod, node)
            if st is not None:
                st.plugin = p.name
                return st, None
        return None, sum(p.score(state, pod, node) * w for p, w in self.scorers)

    def sync(self, state, pod, feed, nodes: list, positions: dict[str, int]) -> None:
        """Recompute the nodes that changed since the last cycle (all of them the first time).
        `nodes` is the cache's current node list; when nodes came or went it is a new list, and
        the answers for nodes still there carry over to their new places."""
        compute = self._compute
        if self.epoch != feed.log_epoch or self.position < feed.change_base:
            self.nodes, self.positions = nodes, positions
            pairs = [compute(state, pod, node) for node in nodes]
            self.status = [st for st, _ in pairs]
            self.scores = [sc for _, sc in pairs]
            self.infeasible = [i for i, st in enumerate(self.status) if st is not None]
            self.epoch = feed.log_epoch
            self.position = feed.change_base + len(feed.change_log)
            return
        if self.nodes is not nodes:
            self._realign(state, pod, nodes, positions)
        changed = feed.change_log[self.position - feed.change_base:]
        if changed:
            positions, status, scores, bad = self.positions, self.status, self.scores, self.infeasible
            for name in set(changed) if len(changed) > 1 else changed:
                i = positions.get(name)
                if i is None:
                    continue  # a placeholder for pods on a node we don't know (not in the list)
                st, sc = self._compute(state, pod, self.nodes[i])
                was = status[i]
                status[i], scores[i] = st, sc
                if (was is None) != (st is None):
                    if st is None:
                        del bad[bisect_left(bad, i)]
                    else:
                        insort(bad, i)
        self.position = feed.change_base + len(feed.change_log)

    def _realign(self, state, pod, nodes: list, positions: dict[str, int]) -> None:
        """Nodes were added or removed: move each kept node's answers to its new index. Nodes that
        changed meanwhile are in the change log and get recomputed by sync() right after."""
        old_nodes, old_positions, old_status, old_scores = self.nodes, self.positions, self.status, self.scores
        status, scores = [], []
        for node in nodes:
            i = old_positions.get(node.name)
            if i is not None and old_nodes[i] is node:
                status.append(old_status[i])
                scores.append(old_scores[i])
            else:
                st, sc = self._compute(state, pod, node)
                status.append(st)
                scores.append(sc)
        self.nodes, self.positions, self.status, self.scores = nodes, positions, status, scores
        self.infeasible = [i for i, st in enumerate(status) if st is not None]

    def window(self, start: int, want: int) -> tuple[list[tuple[int, int]], list[int], int]:
        """Upstream's walk from `start`, wrapping once, until `want` nodes fit: the fitting nodes
        as index ranges, the rejected indices met on the way, and how many nodes were visited."""
        n = len(self.nodes)
        bad = self.infeasible
        if not bad:
            take = min(want, n)
            end = start + take
            ranges = [(start, end)] if end <= n else [(start, n), (0, end - n)]
            return ranges, [], take
        ranges: list[tuple[int, int]] = []
        rejected: list[int] = []
        got = 0
        for lo, hi in ((start, n), (0, start)):
            j = bisect_left(bad, lo)
            p = lo
            while p < hi and got < want:
                nxt = bad[j] if j < len(bad) and bad[j] < hi else hi
                take = min(nxt - p, want - got)
                if take > 0:
                    ranges.append((p, p + take))
                    got += take
                    p += take
                if got >= want or nxt >= hi:
                    break
                rejected.append(nxt)
                p = nxt + 1
                j += 1
            if got >= want:
                break
        return ranges, rejected, got + len(rejected)
