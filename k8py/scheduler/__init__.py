"""The scheduler: places pods on nodes the way kube-scheduler does.

queue.py (active/backoff/unschedulable), cache.py (nodes and pods from
informers, assumed pods), framework.py (extension points, one profile),
plugins/ (one module per plugin), scheduler.py (the scheduling and binding
cycles), messages.py (the FailedScheduling text).
"""
