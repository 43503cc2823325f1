"""Reddit's request budget: the ``x-ratelimit-*`` headers, counted per OAuth client id.

Reddit counts requests per client id in 600 s windows aligned to the clock and
reports ``x-ratelimit-used`` (int string), ``x-ratelimit-remaining`` (float string,
``"599.0"``) and ``x-ratelimit-reset`` (seconds left in the window). Past the budget
it answers 429.

prawcore sleeps *before* each request when ``used / (used + remaining)`` runs ahead of
the elapsed share of the window, so the default budget is huge: tests never sleep.
Pass a small ``budget`` to rehearse a bot that has to pace itself::

    budget = RateBudget(budget=600)
    headers, over = budget.spend("client-id")
"""

import threading
import time

DEFAULT_BUDGET = 1_000_000
WINDOW_SECONDS = 600


class RateBudget:
    def __init__(self, budget=DEFAULT_BUDGET, window=WINDOW_SECONDS, clock=time.time):
        self.budget = budget
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._used = {}  # client id -> (window start, requests used in it)

    def spend(self, client):
        """Count one request for ``client``; return (headers, over_budget)."""
        now = self._clock()
        start = now - now % self.window
        with self._lock:
            window_start, used = self._used.get(client, (start, 0))
            if window_start != start:
                used = 0
            used += 1
            self._used[client] = (start, used)
        remaining = max(self.budget - used, 0)
        reset = max(int(start + self.window - now), 0)
        headers = {
            "x-ratelimit-used": str(used),
            "x-ratelimit-remaining": f"{float(remaining)}",
            "x-ratelimit-reset": str(reset),
        }
        return headers, used > self.budget
