"""A piece of background work that can be told to stop: the play window runs the agent's move
and the overlay's analysis as :class:`Job` s, so the window stays live while they think and a
closed window never waits for them."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

__all__ = ["Job"]


class Job:
    """``work(stop)`` on a daemon thread. ``stop()`` turns true once :meth:`cancel` is called or
    ``seconds`` (None: no limit) have passed; ``work`` polls it. ``key`` names what the job works
    on. Afterwards ``result`` holds what ``work`` returned, or ``error`` what it raised."""

    def __init__(self, work: Callable[[Callable[[], bool]], Any], key: Any, seconds: float | None = None) -> None:
        self.key = key
        self.started = time.monotonic()
        self.result: Any = None
        self.error: BaseException | None = None
        self._deadline = None if seconds is None else self.started + seconds
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), name="selfplay-play", daemon=True)
        self._thread.start()

    def stop_requested(self) -> bool:
        return self._cancelled.is_set() or (self._deadline is not None and time.monotonic() > self._deadline)

    def _run(self, work: Callable[[Callable[[], bool]], Any]) -> None:
        try:
            self.result = work(self.stop_requested)
        except BaseException as e:  # noqa: BLE001 - handed to the window, which shows it
            self.error = e
        finally:
            self._finished.set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def cancel(self) -> None:
        self._cancelled.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the thread; whether it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
