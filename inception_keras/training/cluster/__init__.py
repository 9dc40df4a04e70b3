"""Where a run executes: distribute (strategies, precision) and workers (multi-worker scratch
folders, restored-step agreement, lost peers)."""
