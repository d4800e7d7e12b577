"""Field tables for the Kubernetes protobuf messages k8py decodes.

One entry per message: `Name:` then its fields, `;`-separated, in Go declaration
order (the order JSON writes them).  Each field is

    <number> <jsonName> <type><flag>

type: str, bytes, bool, i32, i64, f32, f64; a message name; `[T]` for a
repeated field; `{T}` for a map with string keys.  Value types with their own
JSON form: time (metav1.Time), mtime (metav1.MicroTime), dur (metav1.Duration),
ios (intstr.IntOrString), qty (resource.Quantity), raw (runtime.RawExtension),
fields (metav1.FieldsV1), strs (the ExtraValue string-list wrapper).

flag: `?` the Go field is a value with `omitempty` (JSON drops its zero value);
`*` the Go field is a pointer (present means set, even to zero); `^` the field
is embedded with `json:",inline"` (its fields merge into the parent); none: a
value field without omitempty (JSON always writes it).  On a message-typed
value field `?` changes nothing: Go's JSON never drops a struct, so an empty
one is written as {} (a zero Time is the exception: it is null).

Field numbers and JSON names are the public protocol of Kubernetes v1.32
(k8s.io/api and k8s.io/apimachinery at v0.32); the set covers every kind kubectl
sends as protobuf and everything those kinds nest.
"""

MESSAGES = """
# --- meta/v1
DeleteOptions:
    1 gracePeriodSeconds i64*; 2 preconditions Preconditions*; 3 orphanDependents bool*;
    4 propagationPolicy str*; 5 dryRun [str]?;
    6 ignoreStoreReadErrorWithClusterBreakingPotential bool*
ObjectMeta:
    1 name str?; 2 generateName str?; 3 namespace str?; 4 selfLink str?; 5 uid str?;
    6 resourceVersion str?; 7 generation i64?; 8 creationTimestamp time?; 9 deletionTimestamp time*;
    10 deletionGracePeriodSeconds i64*; 11 labels {str}?; 12 annotations {str}?;
    13 ownerReferences [OwnerReference]?; 14 finalizers [str]?;
    17 managedFields [ManagedFieldsEntry]?
Preconditions:
    1 uid str*; 2 resourceVersion str*
OwnerReference:
    5 apiVersion str; 1 kind str; 3 name str; 4 uid str; 6 controller bool*;
    7 blockOwnerDeletion bool*
ManagedFieldsEntry:
    1 manager str?; 2 operation str?; 3 apiVersion str?; 4 time time*; 6 fieldsType str?;
    7 fieldsV1 fields*; 8 subresource str?
Condition:
    1 type str; 2 status str; 3 observedGeneration i64?; 4 lastTransitionTime time; 5 reason str;
    6 message str
LabelSelector:
    1 matchLabels {str}?; 2 matchExpressions [LabelSelectorRequirement]?
LabelSelectorRequirement:
    1 key str; 2 operator str; 3 values [str]?
FieldSelectorRequirement:
    1 key str; 2 operator str; 3 values [str]?
# --- core/v1
ConfigMap:
    1 metadata ObjectMeta?; 4 immutable bool*; 2 data {str}?; 3 binaryData {bytes}?
Secret:
    1 metadata ObjectMeta?; 5 immutable bool*; 2 data {bytes}?; 4 stringData {str}?; 3 type str?
Namespace:
    1 metadata ObjectMeta?; 2 spec NamespaceSpec?; 3 status NamespaceStatus?
Service:
    1 metadata ObjectMeta?; 2 spec ServiceSpec?; 3 status ServiceStatus?
ServiceAccount:
    1 metadata ObjectMeta?; 2 secrets [ObjectReference]?; 3 imagePullSecrets [LocalObjectReference]?;
    4 automountServiceAccountToken bool*
Pod:
    1 metadata ObjectMeta?; 2 spec PodSpec?; 3 status PodStatus?
ResourceQuota:
    1 metadata ObjectMeta?; 2 spec ResourceQuotaSpec?; 3 status ResourceQuotaStatus?
NamespaceSpec:
    1 finalizers [str]?
NamespaceStatus:
    1 phase str?; 2 conditions [NamespaceCondition]?
ServiceSpec:
    1 ports [ServicePort]?; 2 selector {str}?; 3 clusterIP str?; 18 clusterIPs [str]?; 4 type str?;
    5 externalIPs [str]?; 7 sessionAffinity str?; 8 loadBalancerIP str?;
    9 loadBalancerSourceRanges [str]?; 10 externalName str?; 11 externalTrafficPolicy str?;
    12 healthCheckNodePort i32?; 13 publishNotReadyAddresses bool?;
    14 sessionAffinityConfig SessionAffinityConfig*; 19 ipFamilies [str]?; 17 ipFamilyPolicy str*;
    20 allocateLoadBalancerNodePorts bool*; 21 loadBalancerClass str*; 22 internalTrafficPolicy str*;
    23 trafficDistribution str*
ServiceStatus:
    1 loadBalancer LoadBalancerStatus?; 2 conditions [Condition]?
ObjectReference:
    1 kind str?; 2 namespace str?; 3 name str?; 4 uid str?; 5 apiVersion str?;
    6 resourceVersion str?; 7 fieldPath str?
LocalObjectReference:
    1 name str?
PodSpec:
    1 volumes [Volume]?; 20 initContainers [Container]?; 2 containers [Container];
    34 ephemeralContainers [EphemeralContainer]?; 3 restartPolicy str?;
    4 terminationGracePeriodSeconds i64*; 5 activeDeadlineSeconds i64*; 6 dnsPolicy str?;
    7 nodeSelector {str}?; 8 serviceAccountName str?; 9 serviceAccount str?;
    21 automountServiceAccountToken bool*; 10 nodeName str?; 11 hostNetwork bool?; 12 hostPID bool?;
    13 hostIPC bool?; 27 shareProcessNamespace bool*; 14 securityContext PodSecurityContext*;
    15 imagePullSecrets [LocalObjectReference]?; 16 hostname str?; 17 subdomain str?;
    18 affinity Affinity*; 19 schedulerName str?; 22 tolerations [Toleration]?;
    23 hostAliases [HostAlias]?; 24 priorityClassName str?; 25 priority i32*;
    26 dnsConfig PodDNSConfig*; 28 readinessGates [PodReadinessGate]?; 29 runtimeClassName str*;
    30 enableServiceLinks bool*; 31 preemptionPolicy str*; 32 overhead {qty}?;
    33 topologySpreadConstraints [TopologySpreadConstraint]?; 35 setHostnameAsFQDN bool*;
    36 os PodOS*; 37 hostUsers bool*; 38 schedulingGates [PodSchedulingGate]?;
    39 resourceClaims [PodResourceClaim]?; 40 resources ResourceRequirements*
PodStatus:
    1 phase str?; 2 conditions [PodCondition]?; 3 message str?; 4 reason str?;
    11 nominatedNodeName str?; 5 hostIP str?; 16 hostIPs [HostIP]?; 6 podIP str?; 12 podIPs [PodIP]?;
    7 startTime time*; 10 initContainerStatuses [ContainerStatus]?;
    8 containerStatuses [ContainerStatus]?; 9 qosClass str?;
    13 ephemeralContainerStatuses [ContainerStatus]?; 14 resize str?;
    15 resourceClaimStatuses [PodResourceClaimStatus]?
ResourceQuotaSpec:
    1 hard {qty}?; 2 scopes [str]?; 3 scopeSelector ScopeSelector*
ResourceQuotaStatus:
    1 hard {qty}?; 2 used {qty}?
NamespaceCondition:
    1 type str; 2 status str; 4 lastTransitionTime time?; 5 reason str?; 6 message str?
ServicePort:
    1 name str?; 2 protocol str?; 6 appProtocol str*; 3 port i32; 4 targetPort ios?; 5 nodePort i32?
SessionAffinityConfig:
    1 clientIP ClientIPConfig*
LoadBalancerStatus:
    1 ingress [LoadBalancerIngress]?
Volume:
    1 name str; 2 volumeSource VolumeSource^
Container:
    1 name str; 2 image str?; 3 command [str]?; 4 args [str]?; 5 workingDir str?;
    6 ports [ContainerPort]?; 19 envFrom [EnvFromSource]?; 7 env [EnvVar]?;
    8 resources ResourceRequirements?; 23 resizePolicy [ContainerResizePolicy]?;
    24 restartPolicy str*; 9 volumeMounts [VolumeMount]?; 21 volumeDevices [VolumeDevice]?;
    10 livenessProbe Probe*; 11 readinessProbe Probe*; 22 startupProbe Probe*;
    12 lifecycle Lifecycle*; 13 terminationMessagePath str?; 20 terminationMessagePolicy str?;
    14 imagePullPolicy str?; 15 securityContext SecurityContext*; 16 stdin bool?; 17 stdinOnce bool?;
    18 tty bool?
EphemeralContainer:
    1 ephemeralContainerCommon EphemeralContainerCommon^; 2 targetContainerName str?
PodSecurityContext:
    1 seLinuxOptions SELinuxOptions*; 8 windowsOptions WindowsSecurityContextOptions*;
    2 runAsUser i64*; 6 runAsGroup i64*; 3 runAsNonRoot bool*; 4 supplementalGroups [i64]?;
    12 supplementalGroupsPolicy str*; 5 fsGroup i64*; 7 sysctls [Sysctl]?;
    9 fsGroupChangePolicy str*; 10 seccompProfile SeccompProfile*;
    11 appArmorProfile AppArmorProfile*; 13 seLinuxChangePolicy str*
Affinity:
    1 nodeAffinity NodeAffinity*; 2 podAffinity PodAffinity*; 3 podAntiAffinity PodAntiAffinity*
Toleration:
    1 key str?; 2 operator str?; 3 value str?; 4 effect str?; 5 tolerationSeconds i64*
HostAlias:
    1 ip str; 2 hostnames [str]?
PodDNSConfig:
    1 nameservers [str]?; 2 searches [str]?; 3 options [PodDNSConfigOption]?
PodReadinessGate:
    1 conditionType str
TopologySpreadConstraint:
    1 maxSkew i32; 2 topologyKey str; 3 whenUnsatisfiable str; 4 labelSelector LabelSelector*;
    5 minDomains i32*; 6 nodeAffinityPolicy str*; 7 nodeTaintsPolicy str*; 8 matchLabelKeys [str]?
PodOS:
    1 name str
PodSchedulingGate:
    1 name str
PodResourceClaim:
    1 name str; 3 resourceClaimName str*; 4 resourceClaimTemplateName str*
ResourceRequirements:
    1 limits {qty}?; 2 requests {qty}?; 3 claims [ResourceClaim]?
PodCondition:
    1 type str; 2 status str; 3 lastProbeTime time?; 4 lastTransitionTime time?; 5 reason str?;
    6 message str?
HostIP:
    1 ip str
PodIP:
    1 ip str
ContainerStatus:
    1 name str; 2 state ContainerState?; 3 lastState ContainerState?; 4 ready bool;
    5 restartCount i32; 6 image str; 7 imageID str; 8 containerID str?; 9 started bool*;
    10 allocatedResources {qty}?; 11 resources ResourceRequirements*;
    12 volumeMounts [VolumeMountStatus]?; 13 user ContainerUser*;
    14 allocatedResourcesStatus [ResourceStatus]?
PodResourceClaimStatus:
    1 name str; 2 resourceClaimName str*
ScopeSelector:
    1 matchExpressions [ScopedResourceSelectorRequirement]?
PodTemplateSpec:
    1 metadata ObjectMeta?; 2 spec PodSpec?
ClientIPConfig:
    1 timeoutSeconds i32*
LoadBalancerIngress:
    1 ip str?; 2 hostname str?; 3 ipMode str*; 4 ports [PortStatus]?
VolumeSource:
    1 hostPath HostPathVolumeSource*; 2 emptyDir EmptyDirVolumeSource*;
    3 gcePersistentDisk GCEPersistentDiskVolumeSource*;
    4 awsElasticBlockStore AWSElasticBlockStoreVolumeSource*; 5 gitRepo GitRepoVolumeSource*;
    6 secret SecretVolumeSource*; 7 nfs NFSVolumeSource*; 8 iscsi ISCSIVolumeSource*;
    9 glusterfs GlusterfsVolumeSource*; 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource*;
    11 rbd RBDVolumeSource*; 12 flexVolume FlexVolumeSource*; 13 cinder CinderVolumeSource*;
    14 cephfs CephFSVolumeSource*; 15 flocker FlockerVolumeSource*;
    16 downwardAPI DownwardAPIVolumeSource*; 17 fc FCVolumeSource*;
    18 azureFile AzureFileVolumeSource*; 19 configMap ConfigMapVolumeSource*;
    20 vsphereVolume VsphereVirtualDiskVolumeSource*; 21 quobyte QuobyteVolumeSource*;
    22 azureDisk AzureDiskVolumeSource*; 23 photonPersistentDisk PhotonPersistentDiskVolumeSource*;
    26 projected ProjectedVolumeSource*; 24 portworxVolume PortworxVolumeSource*;
    25 scaleIO ScaleIOVolumeSource*; 27 storageos StorageOSVolumeSource*; 28 csi CSIVolumeSource*;
    29 ephemeral EphemeralVolumeSource*; 30 image ImageVolumeSource*
ContainerPort:
    1 name str?; 2 hostPort i32?; 3 containerPort i32; 4 protocol str?; 5 hostIP str?
EnvFromSource:
    1 prefix str?; 2 configMapRef ConfigMapEnvSource*; 3 secretRef SecretEnvSource*
EnvVar:
    1 name str; 2 value str?; 3 valueFrom EnvVarSource*
ContainerResizePolicy:
    1 resourceName str; 2 restartPolicy str
VolumeMount:
    1 name str; 2 readOnly bool?; 7 recursiveReadOnly str*; 3 mountPath str; 4 subPath str?;
    5 mountPropagation str*; 6 subPathExpr str?
VolumeDevice:
    1 name str; 2 devicePath str
Probe:
    1 handler ProbeHandler^; 2 initialDelaySeconds i32?; 3 timeoutSeconds i32?; 4 periodSeconds i32?;
    5 successThreshold i32?; 6 failureThreshold i32?; 7 terminationGracePeriodSeconds i64*
Lifecycle:
    1 postStart LifecycleHandler*; 2 preStop LifecycleHandler*
SecurityContext:
    1 capabilities Capabilities*; 2 privileged bool*; 3 seLinuxOptions SELinuxOptions*;
    10 windowsOptions WindowsSecurityContextOptions*; 4 runAsUser i64*; 8 runAsGroup i64*;
    5 runAsNonRoot bool*; 6 readOnlyRootFilesystem bool*; 7 allowPrivilegeEscalation bool*;
    9 procMount str*; 11 seccompProfile SeccompProfile*; 12 appArmorProfile AppArmorProfile*
EphemeralContainerCommon:
    1 name str; 2 image str?; 3 command [str]?; 4 args [str]?; 5 workingDir str?;
    6 ports [ContainerPort]?; 19 envFrom [EnvFromSource]?; 7 env [EnvVar]?;
    8 resources ResourceRequirements?; 23 resizePolicy [ContainerResizePolicy]?;
    24 restartPolicy str*; 9 volumeMounts [VolumeMount]?; 21 volumeDevices [VolumeDevice]?;
    10 livenessProbe Probe*; 11 readinessProbe Probe*; 22 startupProbe Probe*;
    12 lifecycle Lifecycle*; 13 terminationMessagePath str?; 20 terminationMessagePolicy str?;
    14 imagePullPolicy str?; 15 securityContext SecurityContext*; 16 stdin bool?; 17 stdinOnce bool?;
    18 tty bool?
SELinuxOptions:
    1 user str?; 2 role str?; 3 type str?; 4 level str?
WindowsSecurityContextOptions:
    1 gmsaCredentialSpecName str*; 2 gmsaCredentialSpec str*; 3 runAsUserName str*;
    4 hostProcess bool*
Sysctl:
    1 name str; 2 value str
SeccompProfile:
    1 type str; 2 localhostProfile str*
AppArmorProfile:
    1 type str; 2 localhostProfile str*
NodeAffinity:
    1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector*;
    2 preferredDuringSchedulingIgnoredDuringExecution [PreferredSchedulingTerm]?
PodAffinity:
    1 requiredDuringSchedulingIgnoredDuringExecution [PodAffinityTerm]?;
    2 preferredDuringSchedulingIgnoredDuringExecution [WeightedPodAffinityTerm]?
PodAntiAffinity:
    1 requiredDuringSchedulingIgnoredDuringExecution [PodAffinityTerm]?;
    2 preferredDuringSchedulingIgnoredDuringExecution [WeightedPodAffinityTerm]?
PodDNSConfigOption:
    1 name str?; 2 value str*
ResourceClaim:
    1 name str; 2 request str?
ContainerState:
    1 waiting ContainerStateWaiting*; 2 running ContainerStateRunning*;
    3 terminated ContainerStateTerminated*
VolumeMountStatus:
    1 name str; 2 mountPath str; 3 readOnly bool?; 4 recursiveReadOnly str*
ContainerUser:
    1 linux LinuxContainerUser*
ResourceStatus:
    1 name str; 2 resources [ResourceHealth]?
ScopedResourceSelectorRequirement:
    1 scopeName str; 2 operator str; 3 values [str]?
TypedLocalObjectReference:
    1 apiGroup str*; 2 kind str; 3 name str
PortStatus:
    1 port i32; 2 protocol str; 3 error str*
HostPathVolumeSource:
    1 path str; 2 type str*
EmptyDirVolumeSource:
    1 medium str?; 2 sizeLimit qty*
GCEPersistentDiskVolumeSource:
    1 pdName str; 2 fsType str?; 3 partition i32?; 4 readOnly bool?
AWSElasticBlockStoreVolumeSource:
    1 volumeID str; 2 fsType str?; 3 partition i32?; 4 readOnly bool?
GitRepoVolumeSource:
    1 repository str; 2 revision str?; 3 directory str?
SecretVolumeSource:
    1 secretName str?; 2 items [KeyToPath]?; 3 defaultMode i32*; 4 optional bool*
NFSVolumeSource:
    1 server str; 2 path str; 3 readOnly bool?
ISCSIVolumeSource:
    1 targetPortal str; 2 iqn str; 3 lun i32; 4 iscsiInterface str?; 5 fsType str?; 6 readOnly bool?;
    7 portals [str]?; 8 chapAuthDiscovery bool?; 11 chapAuthSession bool?;
    10 secretRef LocalObjectReference*; 12 initiatorName str*
GlusterfsVolumeSource:
    1 endpoints str; 2 path str; 3 readOnly bool?
PersistentVolumeClaimVolumeSource:
    1 claimName str; 2 readOnly bool?
RBDVolumeSource:
    1 monitors [str]; 2 image str; 3 fsType str?; 4 pool str?; 5 user str?; 6 keyring str?;
    7 secretRef LocalObjectReference*; 8 readOnly bool?
FlexVolumeSource:
    1 driver str; 2 fsType str?; 3 secretRef LocalObjectReference*; 4 readOnly bool?;
    5 options {str}?
CinderVolumeSource:
    1 volumeID str; 2 fsType str?; 3 readOnly bool?; 4 secretRef LocalObjectReference*
CephFSVolumeSource:
    1 monitors [str]; 2 path str?; 3 user str?; 4 secretFile str?; 5 secretRef LocalObjectReference*;
    6 readOnly bool?
FlockerVolumeSource:
    1 datasetName str?; 2 datasetUUID str?
DownwardAPIVolumeSource:
    1 items [DownwardAPIVolumeFile]?; 2 defaultMode i32*
FCVolumeSource:
    1 targetWWNs [str]?; 2 lun i32*; 3 fsType str?; 4 readOnly bool?; 5 wwids [str]?
AzureFileVolumeSource:
    1 secretName str; 2 shareName str; 3 readOnly bool?
ConfigMapVolumeSource:
    1 localObjectReference LocalObjectReference^; 2 items [KeyToPath]?; 3 defaultMode i32*;
    4 optional bool*
VsphereVirtualDiskVolumeSource:
    1 volumePath str; 2 fsType str?; 3 storagePolicyName str?; 4 storagePolicyID str?
QuobyteVolumeSource:
    1 registry str; 2 volume str; 3 readOnly bool?; 4 user str?; 5 group str?; 6 tenant str?
AzureDiskVolumeSource:
    1 diskName str; 2 diskURI str; 3 cachingMode str*; 4 fsType str*; 5 readOnly bool*; 6 kind str*
PhotonPersistentDiskVolumeSource:
    1 pdID str; 2 fsType str?
ProjectedVolumeSource:
    1 sources [VolumeProjection]; 2 defaultMode i32*
PortworxVolumeSource:
    1 volumeID str; 2 fsType str?; 3 readOnly bool?
ScaleIOVolumeSource:
    1 gateway str; 2 system str; 3 secretRef LocalObjectReference*; 4 sslEnabled bool?;
    5 protectionDomain str?; 6 storagePool str?; 7 storageMode str?; 8 volumeName str?;
    9 fsType str?; 10 readOnly bool?
StorageOSVolumeSource:
    1 volumeName str?; 2 volumeNamespace str?; 3 fsType str?; 4 readOnly bool?;
    5 secretRef LocalObjectReference*
CSIVolumeSource:
    1 driver str; 2 readOnly bool*; 3 fsType str*; 4 volumeAttributes {str}?;
    5 nodePublishSecretRef LocalObjectReference*
EphemeralVolumeSource:
    1 volumeClaimTemplate PersistentVolumeClaimTemplate*
ImageVolumeSource:
    1 reference str?; 2 pullPolicy str?
ConfigMapEnvSource:
    1 localObjectReference LocalObjectReference^; 2 optional bool*
SecretEnvSource:
    1 localObjectReference LocalObjectReference^; 2 optional bool*
EnvVarSource:
    1 fieldRef ObjectFieldSelector*; 2 resourceFieldRef ResourceFieldSelector*;
    3 configMapKeyRef ConfigMapKeySelector*; 4 secretKeyRef SecretKeySelector*
ProbeHandler:
    1 exec ExecAction*; 2 httpGet HTTPGetAction*; 3 tcpSocket TCPSocketAction*; 4 grpc GRPCAction*
LifecycleHandler:
    1 exec ExecAction*; 2 httpGet HTTPGetAction*; 3 tcpSocket TCPSocketAction*; 4 sleep SleepAction*
Capabilities:
    1 add [str]?; 2 drop [str]?
NodeSelector:
    1 nodeSelectorTerms [NodeSelectorTerm]
PreferredSchedulingTerm:
    1 weight i32; 2 preference NodeSelectorTerm
PodAffinityTerm:
    1 labelSelector LabelSelector*; 2 namespaces [str]?; 3 topologyKey str;
    4 namespaceSelector LabelSelector*; 5 matchLabelKeys [str]?; 6 mismatchLabelKeys [str]?
WeightedPodAffinityTerm:
    1 weight i32; 2 podAffinityTerm PodAffinityTerm
ContainerStateWaiting:
    1 reason str?; 2 message str?
ContainerStateRunning:
    1 startedAt time?
ContainerStateTerminated:
    1 exitCode i32; 2 signal i32?; 3 reason str?; 4 message str?; 5 startedAt time?;
    6 finishedAt time?; 7 containerID str?
LinuxContainerUser:
    1 uid i64; 2 gid i64; 3 supplementalGroups [i64]?
ResourceHealth:
    1 resourceID str; 2 health str?
KeyToPath:
    1 key str; 2 path str; 3 mode i32*
DownwardAPIVolumeFile:
    1 path str; 2 fieldRef ObjectFieldSelector*; 3 resourceFieldRef ResourceFieldSelector*;
    4 mode i32*
VolumeProjection:
    1 secret SecretProjection*; 2 downwardAPI DownwardAPIProjection*;
    3 configMap ConfigMapProjection*; 4 serviceAccountToken ServiceAccountTokenProjection*;
    5 clusterTrustBundle ClusterTrustBundleProjection*
PersistentVolumeClaimTemplate:
    1 metadata ObjectMeta?; 2 spec PersistentVolumeClaimSpec
ObjectFieldSelector:
    1 apiVersion str?; 2 fieldPath str
ResourceFieldSelector:
    1 containerName str?; 2 resource str; 3 divisor qty?
ConfigMapKeySelector:
    1 localObjectReference LocalObjectReference^; 2 key str; 3 optional bool*
SecretKeySelector:
    1 localObjectReference LocalObjectReference^; 2 key str; 3 optional bool*
ExecAction:
    1 command [str]?
HTTPGetAction:
    1 path str?; 2 port ios; 3 host str?; 4 scheme str?; 5 httpHeaders [HTTPHeader]?
TCPSocketAction:
    1 port ios; 2 host str?
GRPCAction:
    1 port i32; 2 service str*
SleepAction:
    1 seconds i64
NodeSelectorTerm:
    1 matchExpressions [NodeSelectorRequirement]?; 2 matchFields [NodeSelectorRequirement]?
SecretProjection:
    1 localObjectReference LocalObjectReference^; 2 items [KeyToPath]?; 4 optional bool*
DownwardAPIProjection:
    1 items [DownwardAPIVolumeFile]?
ConfigMapProjection:
    1 localObjectReference LocalObjectReference^; 2 items [KeyToPath]?; 4 optional bool*
ServiceAccountTokenProjection:
    1 audience str?; 2 expirationSeconds i64*; 3 path str
ClusterTrustBundleProjection:
    1 name str*; 2 signerName str*; 3 labelSelector LabelSelector*; 5 optional bool*; 4 path str
PersistentVolumeClaimSpec:
    1 accessModes [str]?; 4 selector LabelSelector*; 2 resources VolumeResourceRequirements?;
    3 volumeName str?; 5 storageClassName str*; 6 volumeMode str*;
    7 dataSource TypedLocalObjectReference*; 8 dataSourceRef TypedObjectReference*;
    9 volumeAttributesClassName str*
HTTPHeader:
    1 name str; 2 value str
NodeSelectorRequirement:
    1 key str; 2 operator str; 3 values [str]?
VolumeResourceRequirements:
    1 limits {qty}?; 2 requests {qty}?
TypedObjectReference:
    1 apiGroup str*; 2 kind str; 3 name str; 4 namespace str*
# --- apps/v1
Deployment:
    1 metadata ObjectMeta?; 2 spec DeploymentSpec?; 3 status DeploymentStatus?
DeploymentSpec:
    1 replicas i32*; 2 selector LabelSelector*; 3 template PodTemplateSpec;
    4 strategy DeploymentStrategy?; 5 minReadySeconds i32?; 6 revisionHistoryLimit i32*;
    7 paused bool?; 9 progressDeadlineSeconds i32*
DeploymentStatus:
    1 observedGeneration i64?; 2 replicas i32?; 3 updatedReplicas i32?; 7 readyReplicas i32?;
    4 availableReplicas i32?; 5 unavailableReplicas i32?; 6 conditions [DeploymentCondition]?;
    8 collisionCount i32*
DeploymentStrategy:
    1 type str?; 2 rollingUpdate RollingUpdateDeployment*
DeploymentCondition:
    1 type str; 2 status str; 6 lastUpdateTime time?; 7 lastTransitionTime time?; 4 reason str?;
    5 message str?
RollingUpdateDeployment:
    1 maxUnavailable ios*; 2 maxSurge ios*
# --- batch/v1
Job:
    1 metadata ObjectMeta?; 2 spec JobSpec?; 3 status JobStatus?
CronJob:
    1 metadata ObjectMeta?; 2 spec CronJobSpec?; 3 status CronJobStatus?
JobSpec:
    1 parallelism i32*; 2 completions i32*; 3 activeDeadlineSeconds i64*;
    11 podFailurePolicy PodFailurePolicy*; 16 successPolicy SuccessPolicy*; 7 backoffLimit i32*;
    12 backoffLimitPerIndex i32*; 13 maxFailedIndexes i32*; 4 selector LabelSelector*;
    5 manualSelector bool*; 6 template PodTemplateSpec; 8 ttlSecondsAfterFinished i32*;
    9 completionMode str*; 10 suspend bool*; 14 podReplacementPolicy str*; 15 managedBy str*
JobStatus:
    1 conditions [JobCondition]?; 2 startTime time*; 3 completionTime time*; 4 active i32?;
    5 succeeded i32?; 6 failed i32?; 11 terminating i32*; 7 completedIndexes str?;
    10 failedIndexes str*; 8 uncountedTerminatedPods UncountedTerminatedPods*; 9 ready i32*
CronJobSpec:
    1 schedule str; 8 timeZone str*; 2 startingDeadlineSeconds i64*; 3 concurrencyPolicy str?;
    4 suspend bool*; 5 jobTemplate JobTemplateSpec; 6 successfulJobsHistoryLimit i32*;
    7 failedJobsHistoryLimit i32*
CronJobStatus:
    1 active [ObjectReference]?; 4 lastScheduleTime time*; 5 lastSuccessfulTime time*
PodFailurePolicy:
    1 rules [PodFailurePolicyRule]
SuccessPolicy:
    1 rules [SuccessPolicyRule]
JobCondition:
    1 type str; 2 status str; 3 lastProbeTime time?; 4 lastTransitionTime time?; 5 reason str?;
    6 message str?
UncountedTerminatedPods:
    1 succeeded [str]?; 2 failed [str]?
JobTemplateSpec:
    1 metadata ObjectMeta?; 2 spec JobSpec?
PodFailurePolicyRule:
    1 action str; 2 onExitCodes PodFailurePolicyOnExitCodesRequirement*;
    3 onPodConditions [PodFailurePolicyOnPodConditionsPattern]?
SuccessPolicyRule:
    1 succeededIndexes str*; 2 succeededCount i32*
PodFailurePolicyOnExitCodesRequirement:
    1 containerName str*; 2 operator str; 3 values [i32]
PodFailurePolicyOnPodConditionsPattern:
    1 type str; 2 status str
# --- autoscaling/v1
HorizontalPodAutoscaler:
    1 metadata ObjectMeta?; 2 spec HorizontalPodAutoscalerSpec?;
    3 status HorizontalPodAutoscalerStatus?
Scale:
    1 metadata ObjectMeta?; 2 spec ScaleSpec?; 3 status ScaleStatus?
HorizontalPodAutoscalerSpec:
    1 scaleTargetRef CrossVersionObjectReference; 2 minReplicas i32*; 3 maxReplicas i32;
    4 targetCPUUtilizationPercentage i32*
HorizontalPodAutoscalerStatus:
    1 observedGeneration i64*; 2 lastScaleTime time*; 3 currentReplicas i32; 4 desiredReplicas i32;
    5 currentCPUUtilizationPercentage i32*
ScaleSpec:
    1 replicas i32?
ScaleStatus:
    1 replicas i32; 2 selector str?
CrossVersionObjectReference:
    1 kind str; 2 name str; 3 apiVersion str?
# --- authorization.k8s.io/v1
SelfSubjectAccessReview:
    1 metadata ObjectMeta?; 2 spec SelfSubjectAccessReviewSpec; 3 status SubjectAccessReviewStatus?
SelfSubjectRulesReview:
    1 metadata ObjectMeta?; 2 spec SelfSubjectRulesReviewSpec; 3 status SubjectRulesReviewStatus?
SelfSubjectAccessReviewSpec:
    1 resourceAttributes ResourceAttributes*; 2 nonResourceAttributes NonResourceAttributes*
SubjectAccessReviewStatus:
    1 allowed bool; 4 denied bool?; 2 reason str?; 3 evaluationError str?
SelfSubjectRulesReviewSpec:
    1 namespace str?
SubjectRulesReviewStatus:
    1 resourceRules [ResourceRule]; 2 nonResourceRules [NonResourceRule]; 3 incomplete bool;
    4 evaluationError str?
ResourceAttributes:
    1 namespace str?; 2 verb str?; 3 group str?; 4 version str?; 5 resource str?; 6 subresource str?;
    7 name str?; 8 fieldSelector FieldSelectorAttributes*; 9 labelSelector LabelSelectorAttributes*
NonResourceAttributes:
    1 path str?; 2 verb str?
ResourceRule:
    1 verbs [str]; 2 apiGroups [str]?; 3 resources [str]?; 4 resourceNames [str]?
NonResourceRule:
    1 verbs [str]; 2 nonResourceURLs [str]?
FieldSelectorAttributes:
    1 rawSelector str?; 2 requirements [FieldSelectorRequirement]?
LabelSelectorAttributes:
    1 rawSelector str?; 2 requirements [LabelSelectorRequirement]?
# --- authentication.k8s.io/v1
TokenRequest:
    1 metadata ObjectMeta?; 2 spec TokenRequestSpec; 3 status TokenRequestStatus?
SelfSubjectReview:
    1 metadata ObjectMeta?; 2 status SelfSubjectReviewStatus?
TokenRequestSpec:
    1 audiences [str]; 4 expirationSeconds i64*; 3 boundObjectRef BoundObjectReference*
TokenRequestStatus:
    1 token str; 2 expirationTimestamp time
SelfSubjectReviewStatus:
    1 userInfo UserInfo?
BoundObjectReference:
    1 kind str?; 2 apiVersion str?; 3 name str?; 4 uid str?
UserInfo:
    1 username str?; 2 uid str?; 3 groups [str]?; 4 extra {strs}?
# --- rbac.authorization.k8s.io/v1
Role:
    1 metadata ObjectMeta?; 2 rules [PolicyRule]
ClusterRole:
    1 metadata ObjectMeta?; 2 rules [PolicyRule]; 3 aggregationRule AggregationRule*
RoleBinding:
    1 metadata ObjectMeta?; 2 subjects [Subject]?; 3 roleRef RoleRef
ClusterRoleBinding:
    1 metadata ObjectMeta?; 2 subjects [Subject]?; 3 roleRef RoleRef
PolicyRule:
    1 verbs [str]; 2 apiGroups [str]?; 3 resources [str]?; 4 resourceNames [str]?;
    5 nonResourceURLs [str]?
AggregationRule:
    1 clusterRoleSelectors [LabelSelector]?
Subject:
    1 kind str; 2 apiGroup str?; 3 name str; 4 namespace str?
RoleRef:
    1 apiGroup str; 2 kind str; 3 name str
# --- scheduling.k8s.io/v1
PriorityClass:
    1 metadata ObjectMeta?; 2 value i32; 3 globalDefault bool?; 4 description str?;
    5 preemptionPolicy str*
# --- policy/v1
PodDisruptionBudget:
    1 metadata ObjectMeta?; 2 spec PodDisruptionBudgetSpec?; 3 status PodDisruptionBudgetStatus?
Eviction:
    1 metadata ObjectMeta?; 2 deleteOptions DeleteOptions*
PodDisruptionBudgetSpec:
    1 minAvailable ios*; 2 selector LabelSelector*; 3 maxUnavailable ios*;
    4 unhealthyPodEvictionPolicy str*
PodDisruptionBudgetStatus:
    1 observedGeneration i64?; 2 disruptedPods {time}?; 3 disruptionsAllowed i32;
    4 currentHealthy i32; 5 desiredHealthy i32; 6 expectedPods i32; 7 conditions [Condition]?
# --- networking.k8s.io/v1
Ingress:
    1 metadata ObjectMeta?; 2 spec IngressSpec?; 3 status IngressStatus?
IngressSpec:
    4 ingressClassName str*; 1 defaultBackend IngressBackend*; 2 tls [IngressTLS]?;
    3 rules [IngressRule]?
IngressStatus:
    1 loadBalancer IngressLoadBalancerStatus?
IngressBackend:
    4 service IngressServiceBackend*; 3 resource TypedLocalObjectReference*
IngressTLS:
    1 hosts [str]?; 2 secretName str?
IngressRule:
    1 host str?; 2 ingressRuleValue IngressRuleValue^
IngressLoadBalancerStatus:
    1 ingress [IngressLoadBalancerIngress]?
IngressServiceBackend:
    1 name str; 2 port ServiceBackendPort?
IngressRuleValue:
    1 http HTTPIngressRuleValue*
IngressLoadBalancerIngress:
    1 ip str?; 2 hostname str?; 4 ports [IngressPortStatus]?
ServiceBackendPort:
    1 name str?; 2 number i32?
HTTPIngressRuleValue:
    1 paths [HTTPIngressPath]
IngressPortStatus:
    1 port i32; 2 protocol str; 3 error str*
HTTPIngressPath:
    1 path str?; 3 pathType str*; 2 backend IngressBackend
# --- certificates.k8s.io/v1
CertificateSigningRequest:
    1 metadata ObjectMeta?; 2 spec CertificateSigningRequestSpec;
    3 status CertificateSigningRequestStatus?
CertificateSigningRequestSpec:
    1 request bytes; 7 signerName str; 8 expirationSeconds i32*; 5 usages [str]?; 2 username str?;
    3 uid str?; 4 groups [str]?; 6 extra {strs}?
CertificateSigningRequestStatus:
    1 conditions [CertificateSigningRequestCondition]?; 2 certificate bytes?
CertificateSigningRequestCondition:
    1 type str; 6 status str; 2 reason str?; 3 message str?; 4 lastUpdateTime time?;
    5 lastTransitionTime time?
"""

# (apiVersion, kind) -> top-level message.  DeleteOptions is registered in every
# group version, so it is accepted under any apiVersion (see decoder).
KINDS = {
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Namespace"): "Namespace",
    ("v1", "Service"): "Service",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Pod"): "Pod",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "HorizontalPodAutoscaler",
    ("autoscaling/v1", "Scale"): "Scale",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("policy/v1", "Eviction"): "Eviction",
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): "CertificateSigningRequest",
}
