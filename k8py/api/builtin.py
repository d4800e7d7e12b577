"""The built-in resources of Kubernetes v1.32 that k8py serves.

Short names, categories and subresources are upstream's, as
`kubectl api-resources` lists them.
"""

from __future__ import annotations

from k8py.api.registry import Registry, Resource, Scale

ALL = ("all",)
CREATE_ONLY = ("create",)
READ_ONLY = ("get", "list")
POD_STREAMS = ("attach", "exec", "log", "portforward", "proxy")

CORE = [
    Resource("", "v1", "Pod", "pods", short_names=("po",), categories=ALL,
             subresources=("status", "binding", "eviction", "ephemeralcontainers") + POD_STREAMS),
    Resource("", "v1", "Node", "nodes", namespaced=False, short_names=("no",),
             subresources=("status", "proxy")),
    Resource("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
             subresources=("status", "finalize"),
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    Resource("", "v1", "Service", "services", short_names=("svc",), categories=ALL,
             subresources=("status", "proxy")),
    Resource("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    Resource("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    Resource("", "v1", "Secret", "secrets"),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
             subresources=("token",)),
    Resource("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False,
             short_names=("pv",), subresources=("status",)),
    Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
             subresources=("status",)),
    Resource("", "v1", "Event", "events", short_names=("ev",)),
    Resource("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",),
             subresources=("status",)),
    Resource("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    Resource("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
             categories=ALL, subresources=("status", "scale"), scale=Scale(selector_is_map=True)),
    Resource("", "v1", "PodTemplate", "podtemplates"),
    Resource("", "v1", "Binding", "bindings", verbs=CREATE_ONLY),
    Resource("", "v1", "ComponentStatus", "componentstatuses", namespaced=False,
             short_names=("cs",), verbs=READ_ONLY,
             deprecation_warning="v1 ComponentStatus is deprecated in v1.19+"),
]

APPS = [
    Resource("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=ALL,
             subresources=("status", "scale"), scale=Scale()),
    Resource("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=ALL,
             subresources=("status", "scale"), scale=Scale()),
    Resource("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=ALL,
             subresources=("status", "scale"), scale=Scale()),
    Resource("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=ALL,
             subresources=("status",)),
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions"),
]

BATCH = [
    Resource("batch", "v1", "Job", "jobs", categories=ALL, subresources=("status",)),
    Resource("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=ALL,
             subresources=("status",)),
]

AUTOSCALING = [
    # v2 is the storage version; v1 is converted on the way in and out.
    Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
             short_names=("hpa",), categories=ALL, subresources=("status",)),
    Resource("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
             short_names=("hpa",), categories=ALL, subresources=("status",), storage_version="v2"),
]

OTHERS = [
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",),
             subresources=("status",)),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",),
             subresources=("status",)),
    Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False,
             short_names=("sc",)),
    Resource("storage.k8s.io", "v1", "CSIDriver", "csidrivers", namespaced=False),
    Resource("storage.k8s.io", "v1", "CSINode", "csinodes", namespaced=False),
    Resource("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", namespaced=False,
             subresources=("status",)),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
             namespaced=False),
    Resource("coordination.k8s.io", "v1", "Lease", "leases"),
    Resource("events.k8s.io", "v1", "Event", "events", short_names=("ev",),
             storage_group="", storage_version="v1"),
    Resource("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False,
             short_names=("pc",)),
]

# Computed on request, never stored (apiserver/reviews.py).
REVIEWS = [
    Resource("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False, verbs=CREATE_ONLY),
    Resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False,
             verbs=CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
             namespaced=False, verbs=CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", namespaced=False,
             verbs=CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
             verbs=CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
             namespaced=False, verbs=CREATE_ONLY),
]


# Stored as they come; what acts on them (webhook calls, admission policies, API
# priority and fairness, aggregation, certificate signing) is built on top later.
PLATFORM = [
    Resource("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
             namespaced=False, short_names=("csr",), subresources=("status", "approval")),
    Resource("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", namespaced=False),
    Resource("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
             "mutatingwebhookconfigurations", namespaced=False, categories=("api-extensions",)),
    Resource("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
             "validatingwebhookconfigurations", namespaced=False, categories=("api-extensions",)),
    Resource("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
             "validatingadmissionpolicies", namespaced=False, categories=("api-extensions",),
             subresources=("status",)),
    Resource("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
             "validatingadmissionpolicybindings", namespaced=False, categories=("api-extensions",)),
    Resource("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", namespaced=False,
             subresources=("status",)),
    Resource("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration",
             "prioritylevelconfigurations", namespaced=False, subresources=("status",)),
    Resource("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities"),
    Resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
             namespaced=False, short_names=("crd", "crds"), categories=("api-extensions",),
             subresources=("status",)),
    Resource("apiregistration.k8s.io", "v1", "APIService", "apiservices", namespaced=False,
             categories=("api-extensions",), subresources=("status",)),
]


def builtin_registry() -> Registry:
    return Registry(CORE + APPS + BATCH + AUTOSCALING + OTHERS + REVIEWS + PLATFORM)
