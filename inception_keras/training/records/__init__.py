"""What a run leaves behind for people: reports (the summary and the final evaluation's files),
run_state (what a run has finished), confusion (per-class results)."""
