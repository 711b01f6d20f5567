"""Schema migration: the planner diffs the Registry against the live schema; the applier runs a plan."""
