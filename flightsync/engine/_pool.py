"""A bounded pool of daemon worker threads for provider calls.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, even
after ``shutdown(wait=False)``: one provider call stuck outside any socket operation (the
transport bounds those) would hold the finished run's process until it returned. These
workers are daemon threads, so a call the engine has given up on (engine/_watchdog.py) never
keeps the process alive; the calls the engine waited for have all returned by then. Results
travel through the futures the caller settles, not through the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import SimpleQueue


class DaemonPool:
    """Runs submitted callables on up to ``workers`` daemon threads, started on demand."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._tasks: SimpleQueue[Callable[[], None] | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, task: Callable[[], None]) -> None:
        """Queue ``task``; it must not raise (the caller's future carries its outcome)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._tasks.put(task)
            if self._idle == 0 and len(self._threads) < self._workers:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}_{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            else:
                self._idle = max(self._idle - 1, 0)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None or self._closed:
                return  # shut down: the tasks still queued are dropped
            task()
            with self._lock:
                self._idle += 1

    def shutdown(self, *, wait: bool) -> None:
        """Stop taking tasks, drop the queued ones, and (``wait``) join the workers."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._tasks.put(None)
        if wait:
            for thread in threads:
                thread.join()
