"""Admission by expected wait: a request that would wait longer than `max_wait_s` is refused at once (503),
before its body is read.

Under overload the wait is not only the scoring queue (serving/batcher.py): each request's body is parsed and
validated on the worker's one event loop, so with large /predict_batch bodies requests queued there, where
no count of shoppers sees them (admitted requests waited p50 4.5 s; 2.3 s with a 0.5 s scoring-queue bound).
This gate sees the whole request: by Little's law a new request waits about (requests in flight + 1) x
the busy time per answered request, measured over the traffic itself: busy time (only time with a request
in flight, so idle gaps do not make the server look slow) over answers, both decayed per answer (about the
last few hundred answers). A ratio of sums, not an average of per-answer samples: batched answers leave
together, one carrying the batch's whole busy time and the rest none, and an average of such samples
swung enough to refuse requests at ordinary load. A request that finds nothing in flight is always
admitted, however large.
"""
from __future__ import annotations

import math
import time

DECAY = 0.98  # per answer: the estimate follows about the last 50 answers (a few batches)


class AdmissionGate:
    def __init__(self, max_wait_s: float, clock=time.monotonic):
        self.max_wait_s = max_wait_s
        self._clock = clock
        self.in_flight = 0
        self._busy_s = 0.0  # decayed busy time and answers: their ratio is the busy time per answer
        self._answers = 0.0
        self._last_change = clock()

    def busy_per_answer_s(self) -> float:
        return self._busy_s / self._answers if self._answers else 0.0  # nothing measured yet: admit

    def expected_wait_s(self) -> float:
        return (self.in_flight + 1) * self.busy_per_answer_s()

    def admit(self) -> bool:
        """True (and counted in flight) when the request may enter; the caller then calls `done()` once."""
        if self.in_flight and self.expected_wait_s() > self.max_wait_s:
            return False
        self._account()
        self.in_flight += 1
        return True

    def done(self) -> None:
        self._account()
        self.in_flight -= 1
        # Decayed toward recent answers: the cost follows the traffic's mix of request sizes.
        self._busy_s *= DECAY
        self._answers = self._answers * DECAY + 1

    def retry_after_s(self) -> int:
        """Whole seconds (HTTP's Retry-After), at least 1: about when the work in flight is done."""
        return max(1, math.ceil(self.in_flight * self.busy_per_answer_s()))

    def _account(self) -> None:
        now = self._clock()
        if self.in_flight:
            self._busy_s += now - self._last_change
        self._last_change = now
