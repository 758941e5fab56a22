"""Running a batch: the runner entry point, each attempt, and the child process for timeouts."""
