"""The one polling loop of the tests: wait for a condition, with a deadline."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, *, poll: float = 0.2,
               while_running: subprocess.Popen | None = None) -> T | None:
    """Call ``condition`` every ``poll`` seconds until it returns something truthy (returned),
    ``timeout`` seconds pass, or the process ``while_running`` exits (then None). A condition
    that raises (a study not created yet) counts as not yet."""
    deadline = time.time() + timeout
    while time.time() < deadline and (while_running is None or while_running.poll() is None):
        try:
            got = condition()
        except Exception:  # noqa: BLE001 - e.g. the study or file does not exist yet
            got = None
        if got:
            return got
        time.sleep(poll)
    return None
