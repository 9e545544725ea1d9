"""Waiting for something a real server does in its own time."""

import time


def wait_for(what: str, check, timeout: float = 150.0, every: float = 1.0):
    """Poll `check` until it returns something truthy, and return that; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
