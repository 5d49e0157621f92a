"""Ctrl-C during a ``litdata.optimize`` call ends ``prepare_data.py`` with exit code 130, as an interrupt should.

litdata's ``optimize`` installs its own SIGINT handler for the call: it stops the call's worker processes and
ends the process with ``os._exit(0)``, so an interrupted preparation reported success to a shell script
(``prepare_data.py ... && train.py ...``) or a scheduler. litdata also leaves that handler set after the
call; it holds the call's data processor, hence a part's text, alive, and a later Ctrl-C would exit 0 too.

``interrupt_exits_130()`` wraps one call: litdata's handler is replaced, for that call, by one that stops the
workers as litdata's does, says that the finished parts are kept, and exits 130 (128 + SIGINT); afterwards
the caller's handler is back. Nothing is written on that path: the progress file names the finished parts
only and the manifest comes after the last one, so interrupted shards never look complete.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partialmethod
from typing import Any

EXIT_CODE = 128 + signal.SIGINT


def _stop_and_exit(processor: Any, signum: int, frame: Any, main: int) -> None:
    if os.getpid() != main:  # a forked worker (it inherits the handler): the main process tells the user
        os._exit(EXIT_CODE)
    for queue in getattr(processor, "stop_queues", None) or ():
        queue.put(None)
    for worker in getattr(processor, "workers", None) or ():
        worker.join(0)
    sys.stderr.write(
        "\nInterrupted while tokenizing: the parts finished so far are kept; run the same command to go on.\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_CODE)  # as litdata's handler does (its workers may hold locks), with an interrupt's code


@contextmanager
def interrupt_exits_130() -> Iterator[None]:
    from litdata.processing.data_processor import DataProcessor

    handler = signal.getsignal(signal.SIGINT)
    litdata_handler = DataProcessor.__dict__.get("_signal_handler")
    if litdata_handler is not None:  # litdata binds it when a call starts: replaced for this call only
        DataProcessor._signal_handler = partialmethod(_stop_and_exit, main=os.getpid())
    try:
        yield
    finally:
        if litdata_handler is not None:
            DataProcessor._signal_handler = litdata_handler
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
