"""Images: references, registry pulls, a content-addressed store, unpacked snapshots."""
