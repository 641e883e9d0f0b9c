"""Locust load for the signals endpoint: each user posts realistic shoppers to /predict back to back.

Bodies come from the JSON list at $SIGNALS_BENCH_BODIES (written by benchmarks/serving/run.py), so
that building them costs the load generator nothing during the test.
"""
from __future__ import annotations

import itertools
import json
import os

from locust import FastHttpUser, constant, task

BODIES = [json.dumps(body).encode() for body in json.load(open(os.environ["SIGNALS_BENCH_BODIES"]))]
HEADERS = {"content-type": "application/json"}


class Shopper(FastHttpUser):
    wait_time = constant(0)  # closed loop: the next request leaves when the answer arrives

    def on_start(self) -> None:
        self.bodies = itertools.cycle(BODIES[hash(self) % len(BODIES):] + BODIES)

    @task
    def predict(self) -> None:
        self.client.post("/predict", data=next(self.bodies), headers=HEADERS)
