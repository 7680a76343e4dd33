"""A task run in a thread of its own, off the path of the request that asks for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Coalesced"]

_log = logging.getLogger(__name__)


class Coalesced:
    """Runs a key's task in a thread: one at a time per key, and one more pass after it
    if asked again while it runs, so a burst of asks costs two passes, not one each.

    A task is best effort: a failure is logged as ``failure`` and the next ask retries.
    """

    def __init__(self, name: str, failure: str, *, daemon: bool, delay_s: float = 0.0):
        self.name = name
        self.failure = failure
        self.daemon = daemon
        self.delay_s = delay_s
        self._due: dict[str, bool] = {}
        self._lock = threading.Lock()

    def ask(self, key: str, task: Callable[[], object]) -> None:
        with self._lock:
            if key in self._due:
                self._due[key] = True
                return
            self._due[key] = False
        threading.Thread(
            target=self._run, args=(key, task), name=self.name, daemon=self.daemon
        ).start()

    def _run(self, key: str, task: Callable[[], object]) -> None:
        time.sleep(self.delay_s)
        while True:
            try:
                task()
            except Exception:
                _log.warning(self.failure, exc_info=True)
            with self._lock:
                if not self._due[key]:
                    del self._due[key]
                    return
                self._due[key] = False
