"""Dynamic volume provisioners, speaking upstream's external-provisioner protocol.

`controller.py` is the protocol (sig-storage-lib-external-provisioner's
ProvisionController): it watches claims the PV controller annotated with
`volume.kubernetes.io/storage-provisioner: <name>`, asks a provisioner for a
PersistentVolume, creates it pre-bound to the claim, and for Delete-policy
volumes it made, removes the storage and the PV once they are Released.
The provisioners only make and remove storage:

- `local_path.py`: rancher.io/local-path as k3s ships it (component
  `local-storage`), a directory per volume under `<data-dir>/storage/`;
- `shared_folder.py`: nfs-subdir-external-provisioner's pattern (component
  `shared-folder`), one subdirectory per volume of a share the operator names.
"""
