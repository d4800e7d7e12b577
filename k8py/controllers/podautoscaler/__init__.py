"""The HorizontalPodAutoscaler controller (kube-controller-manager's horizontal-pod-autoscaler).

replicas.py   the replica calculation from per-pod metrics (tolerance, missing and unready pods)
behavior.py   stabilization windows and scaling policies (spec.behavior, or the legacy rules)
metrics.py    PodMetrics from metrics.k8s.io through the API server
status.py     conditions and status
controller.py the sync loop: scale subresource, metrics, rescale, status, events
"""
