"""Field ownership (metadata.managedFields) and server-side apply.

The implementation lives in the `k8py.apiserver.fieldmanager` package; this
module is the entry point handlers import.
"""

from k8py.apiserver.fieldmanager import *  # noqa: F401,F403
from k8py.apiserver.fieldmanager import __all__  # noqa: F401
