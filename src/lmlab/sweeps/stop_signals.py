"""SIGINT (Ctrl-C) and SIGTERM (``kill``, a scheduler) stop a sweep at a point it can resume from.

While trials run (``launching``), the signal stops them at once: SIGINT raises KeyboardInterrupt, SIGTERM
``SystemExit(143)``, so the sweep marks the trials interrupted and the same command runs them again. A
trial inside a Lightning ``Trainer`` gets SIGTERM through Lightning's own handler, which calls this one too:
the trial stops at the end of its batch (training saves a checkpoint first, ``lmlab.reliability.signals``)
and exits with 143, so this handler then only records the signal. Between trials (asking Optuna, telling it a result) the signal is
recorded and the sweep stops before the next batch, with no study write cut in half.
The sweep then exits with 128 + the signal's number (130, 143), after writing its summary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Install with ``with StopSignals() as stop:``; run trials inside ``with stop.launching():``."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._launching = False
        self._raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @property
    def exit_code(self) -> int | None:
        return None if self.received is None else 128 + self.received

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum
        if signal.getsignal(signum) != self._handle:
            return  # called by Lightning's SIGTERM handler, which stops the training itself
        if self._launching:
            self._stop_now()

    def _stop_now(self) -> None:
        if self._raised or self.received is None:
            return
        self._raised = True  # a second signal while stopping does not cut the bookkeeping short
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(self.exit_code)

    def check(self) -> None:
        """Stop here if a signal came since the last trials ended."""
        self._stop_now()

    @contextmanager
    def launching(self) -> Iterator[None]:
        """Trials run inside: a signal stops them at once (and one that came just before, too)."""
        self._stop_now()
        self._launching = True
        try:
            yield
        finally:
            self._launching = False
