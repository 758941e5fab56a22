"""Storing tasks: the store run_due_tasks claims from, its SQL, results, pruning and retention."""
