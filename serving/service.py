"""The BentoML service: `bentoml serve serving.service:SessionSignals` (or `signals serve`).

Startup loads the model (serving/model_source.py), builds every lookup table, and scores a few warm-up
requests; BentoML creates the service inside the server's startup, so /readyz answers 200 only after
that. Liveness: /livez (also /healthz). Schema: /docs.json. Metrics: /metrics.
"""
from __future__ import annotations

import gc
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import bentoml
import torch
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from serving import error_log
from serving.batcher import MicroBatcher, Overloaded
from serving.engine import SignalsEngine
from serving.api_types import BatchRequest, BatchSignals, ShopperRequest, ShopperSignals
from serving.experiment import PinnedExperiment
from serving.http_guard import RequestGuard, overloaded_body
from serving.http_limits import ConnectionLimits
from serving.http_limits import install as install_connection_limits
from serving.model_source import located_model
from serving.route_labels import served_paths
from serving.segments import SegmentRules, load_rules
from serving.split_engine import SplitEngine
from serving.settings import ServingSettings


@bentoml.service(
    name="session-signals",
    workers=ServingSettings.from_env().workers,
    traffic={"timeout": 30},
    logging={"access": {"enabled": False}},  # no line per request at hundreds per second; errors are still logged
)
class SessionSignals:
    def __init__(self) -> None:
        exit_with_parent()
        error_log.install()
        settings = ServingSettings.from_env()
        torch.set_num_threads(settings.torch_threads)
        rules = load_rules(settings.segments_config, settings.segment_overrides)
        if settings.experiment:  # a traffic split: an engine per arm and the assignment log
            self.engine = experiment_engine(settings.experiment, rules, settings.trends)
        else:
            with located_model(settings) as (path, identity):
                self.engine = SignalsEngine.from_bundle(path, identity, rules, settings.trends)
        self.engine.warm_up()
        # The model, vocabularies and lookup tables live as long as the process: take them out of the
        # garbage collector's full passes, which would otherwise walk them and stall requests.
        gc.freeze()
        self.batcher: MicroBatcher[tuple[ShopperRequest, datetime], ShopperSignals] = MicroBatcher(
            self._score, settings.max_batch_size, settings.max_queue)

    def _score(self, items: list[tuple[ShopperRequest, datetime]]) -> list[ShopperSignals]:
        return self.engine.predict([request for request, _ in items], [as_of for _, as_of in items])

    async def _submit(self, requests: list[ShopperRequest]) -> list[ShopperSignals] | JSONResponse:
        now = datetime.now(UTC)  # as_of defaults to arrival, not to when the batch happens to run
        try:
            return await self.batcher.submit([(request, request.as_of or now) for request in requests])
        except Overloaded as err:
            return overloaded(err)  # BentoML sends a Response as it is (an exception would become its generic 503)

    @bentoml.api(route="/predict")
    async def predict(self, request: ShopperRequest, /) -> ShopperSignals:
        """Signals for one shopper: purchase intent, churn risk, top-k products, category and brand
        affinities, segment labels, and the model version that answered. The JSON body is the shopper's
        request itself. 400 names the malformed field; 503 means overloaded (retry)."""
        answer = await self._submit([request])
        return answer if isinstance(answer, JSONResponse) else answer[0]

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, request: BatchRequest, /) -> BatchSignals:
        """Signals for up to 256 shoppers in one call, in request order (same fields as /predict)."""
        answer = await self._submit(request.shoppers)
        return answer if isinstance(answer, JSONResponse) else BatchSignals(results=answer)


    # --- experiments (serving/split_engine.py): readiness names a failing assignment log; shutdown flushes it
    async def __is_ready__(self) -> bool:
        problem = self.engine.problem() if isinstance(self.engine, SplitEngine) else None
        if problem:
            raise HTTPException(status_code=503, detail=problem)
        return True

    @bentoml.on_shutdown
    def close_assignment_log(self) -> None:
        if isinstance(self.engine, SplitEngine):
            self.engine.close()


def overloaded(err: Overloaded) -> JSONResponse:
    return JSONResponse(overloaded_body(str(err), 1), status_code=503, headers={"Retry-After": "1"})


def experiment_engine(pinned_json: str, rules: SegmentRules, trends: Path | None) -> SplitEngine:
    from serving.experiment_metrics import counter_for  # here: after BentoML set up its metrics (see there)

    experiment = PinnedExperiment.from_json(pinned_json)
    return SplitEngine.from_pinned(experiment, rules, counter_for(experiment.name), trends)


def exit_with_parent(poll_s: float = 1.0) -> None:
    """End this worker when the process that started it (BentoML's arbiter) is gone: a killed arbiter must
    not leave workers answering with nothing to supervise or restart them."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


_settings = ServingSettings.from_env()
# At import: a BentoML worker imports this module before it configures uvicorn (serving/http_limits.py).
install_connection_limits(
    ConnectionLimits(_settings.max_header_bytes, _settings.header_timeout_s, _settings.body_timeout_s),
    served_paths(api.route for api in SessionSignals.apis.values()))
SessionSignals.add_asgi_middleware(RequestGuard, api_token=_settings.api_token, max_wait_s=_settings.max_wait_s,
                                   api_routes=frozenset(api.route for api in SessionSignals.apis.values()))
