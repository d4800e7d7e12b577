"""The volume controllers: the PersistentVolume binder (binder.py, with the matching
rules in matching.py and reclaiming in reclaim.py) and the pvc-/pv-protection
controllers (protection.py)."""
