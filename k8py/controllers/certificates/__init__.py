"""The certificates controllers: csrapproving (approver.py) and csrsigning (signer.py)."""
