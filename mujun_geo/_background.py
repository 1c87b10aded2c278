"""Background threads that use the CPU the main thread leaves idle.

Two pieces of work run beside the main thread: the spatial queries of matching (beside the
name rules) and the floor area of the buildings (beside matching, evaluation and land
allocation). Neither is needed until later, but at equal priority the operating system
shares the cores evenly, so they also take CPU from the main thread's own parallel parts
(the name rules' regular expressions on two threads, rapidfuzz's ``cdist`` on every core).
A thread that owns a background task lowers its own priority first: it then runs on the
core the main thread leaves idle and yields when the main thread has work for both.
"""

from __future__ import annotations

import os
import sys
import threading

#: How much lower (in ``nice`` steps, 0–19) a background thread runs than its process.
NICE = 10


def lower_priority(nice: int = NICE) -> bool:
    """Lower the calling thread's CPU priority by `nice` steps (Linux only).

    Call it first in a thread that exists for background work (a pool ``initializer``): the
    change lasts as long as the thread, and threads it starts inherit it. Elsewhere (other
    systems, where a thread id is not a process id, or when the call is refused) nothing
    changes.

    Parameters
    ----------
    nice
        Steps to add to the thread's nice value (capped at 19); 0 changes nothing.

    Returns
    -------
    bool
        Whether the priority was lowered.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1, initializer=lower_priority) as pool:
    ...     pool.submit(sum, [1, 2]).result()  # runs at the lower priority on Linux
    3
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()  # on Linux a thread is a task with its own nice value
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + nice))
    except OSError:
        return False
    return True
