"""Pod Security admission (upstream's built-in PodSecurity plugin, v1.32).

- policy.py: levels, versions, a namespace's policy from its
  `pod-security.kubernetes.io/<mode>[-version]` labels;
- checks.py: the Pod Security Standards checks, as a table per version;
- evaluator.py: which checks a level and version runs, their results;
- config.py: PodSecurityConfiguration (defaults, exemptions);
- admission.py: the plugin: pods, workload templates and namespaces.
"""

from k8py.apiserver.podsecurity.admission import PodSecurity
from k8py.apiserver.podsecurity.config import load as load_config

__all__ = ["PodSecurity", "load_config"]
