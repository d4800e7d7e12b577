"""Node lifecycle: what happens to pods when their node is tainted or goes away."""
