"""The fault-injection suite runs the real command in subprocesses, as the end-to-end tests do."""

from tests.e2e.conftest import lock_file, run_command, start_command
from tests.faults.fleet import host_start

__all__ = ["host_start", "lock_file", "run_command", "start_command"]
