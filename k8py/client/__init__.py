"""The API client every component uses: REST, informers, work queues, events, leader election."""

from k8py.client.events import EventRecorder
from k8py.client.informer import Informer
from k8py.client.leaderelection import LeaderElector
from k8py.client.rest import ApiError, Client, ResourceClient, api_path
from k8py.client.workqueue import ShutDown, WorkQueue

__all__ = ["ApiError", "Client", "EventRecorder", "Informer", "LeaderElector", "ResourceClient", "ShutDown",
           "WorkQueue", "api_path"]
