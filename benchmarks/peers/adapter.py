"""The project's model as a model of the peers harness (`../shared/peers`, PROTOCOL.md section 5).

`SessionSignalsPeer.fit(train, n_items)` turns the harness's train frame (session_id, item 0..n-1, ts)
into canonical events (one user per session, every event a `view` of product `str(item)`, no category,
brand or price), writes them as `events.parquet` in a temporary folder and trains through the project's
own code path: `training.training_data.prepare` + `training.final_fit.fit_final` (early stopping, then the refit when `train.refit`), with the run config of
`configs/yoochoose.yaml` (or another) plus overrides. Epochs are chosen by the project's own validation
split (the last `split.val_days` of the train time range, early stopping on `train.monitor`); the
harness's test sessions are never seen.

The project's split always has a test window. Here the test data belong to the harness, so the test
window holds one dummy event one second after the last training event (a separate `data.test_path`
folder, exactly how the YooChoose config fixes its test start): every harness training event falls in the
project's train or validation window, and the dummy user never trains anything (it has no next-product
label and is outside the encoder's training window).

`score(prefixes)` encodes each prefix with the fitted `EventEncoder.encode_columns`, with the same
arguments as serving's `serving.request_encoding.encode_history` (the latest `max_len` events, the first
one starts the user and the session), runs `SignalPredictor.score_encoded` (the function serving calls)
and maps the project's product ids back to the harness's item index; items outside the encoder's
vocabulary get -inf. The protocol gives prefixes without timestamps: the events of a prefix are spaced by
one fixed gap (by default the median within-session gap of the training events), the one input that
differs from serving.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd

from events.config_io import flatten, load_config, to_dict
from models.encoding import with_whole_history
from models.predictor import SignalPredictor
from models.vocab import N_RESERVED
from training.config import TrainRunConfig
from training.labels import TRAIN, VAL
from training.final_fit import fit_final
from events.loaders.events_io import write_events
from training.training_data import prepare

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "configs" / "yoochoose.yaml"
QUICK_OVERRIDES = ("train.max_epochs=1", "train.limit_train_batches=0.25", "model.d_model=16")
"""`--quick`: a smoke test of the whole path, not a measurement."""
DUMMY = "__peers_dummy__"

log = logging.getLogger(__name__)


def canonical_events(train: pd.DataFrame) -> pd.DataFrame:
    """Harness train frame (session_id, item, ts seconds; sorted by session, ts) -> canonical events:
    one user per session, a `view` of product str(item), category, brand and price null."""
    sid = train["session_id"].astype("int64").astype(str).to_numpy()
    us = np.round(train["ts"].to_numpy(dtype=np.float64) * 1e6).astype(np.int64)  # the table's resolution
    ts = pd.to_datetime(us, unit="us", utc=True).astype("datetime64[us, UTC]")
    return pd.DataFrame({
        "user_id": sid,
        "session_id": sid,
        "ts": ts,
        "event_type": "view",
        "product_id": train["item"].astype("int64").astype(str).to_numpy(),
        "category": pd.Series([None] * len(train), dtype=object),
        "brand": pd.Series([None] * len(train), dtype=object),
        "price": np.full(len(train), np.nan),
    })


def write_canonical(events: pd.DataFrame, folder: Path) -> Path:
    return write_events(events, folder, source="peers-harness")


def median_session_gap(train: pd.DataFrame) -> float:
    """Median seconds between consecutive events of the same train session (1 s when there are none)."""
    same = train["session_id"].to_numpy()[1:] == train["session_id"].to_numpy()[:-1]
    gaps = np.diff(train["ts"].to_numpy(dtype=np.float64))[same]
    return float(np.median(gaps)) if len(gaps) else 1.0


class EpochRecorder(L.Callback):
    """Validation metrics after every epoch (what early stopping saw)."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()
             if v.numel() == 1 and (k.startswith("val_") or k == "train_loss")}
        self.epochs.append({"epoch": trainer.current_epoch + 1, **m})


class SessionSignalsPeer:
    """The harness interface: `name`, `params`, `fit(train, n_items)`, `score(prefixes)`."""

    name = "session-signals"

    def __init__(self, config: str | Path | None = DEFAULT_CONFIG, overrides: list[str] | tuple = (),
                 seed: int = 42, gap_seconds: float | None = None, workdir: str | Path | None = None,
                 keep_workdir: bool = False):
        self.config_path = Path(config) if config else None
        self.overrides = list(overrides)
        self.seed = seed
        self.gap_seconds = gap_seconds  # None: median within-session gap of the train frame
        self.workdir = Path(workdir) if workdir else None
        self.keep_workdir = keep_workdir
        self.predictor: SignalPredictor | None = None
        self.fit_report: dict = {}

    # ---- the config of a run -------------------------------------------------------------------
    def run_config(self, data_dir: Path, test_dir: Path, out_dir: Path) -> TrainRunConfig:
        return load_config(TrainRunConfig, self.config_path, [
            *self.overrides,
            f"data.path={data_dir}", f"data.test_path={test_dir}", "data.name=peers",
            f"train.seed={self.seed}", "train.progress_bar=false", f"output_dir={out_dir}",
        ])

    @property
    def params(self) -> dict:
        """What results.json records: the config file, the overrides, the resolved run config, the fit."""
        p = {"config": str(self.config_path.relative_to(ROOT)) if self.config_path and self.config_path.is_relative_to(ROOT)
             else str(self.config_path), "overrides": self.overrides, "seed": self.seed,
             "prefix_gap_seconds": self.gap_seconds}
        if self.fit_report:
            p["resolved"] = self.fit_report.get("resolved", {})
        return p

    # ---- fit -----------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, n_items: int) -> None:
        t0 = time.perf_counter()
        self.n_items = n_items
        if self.gap_seconds is None:
            self.gap_seconds = median_session_gap(train)
        events = canonical_events(train)
        last = events["ts"].max()
        dummy = pd.DataFrame({"user_id": [DUMMY], "session_id": [DUMMY], "ts": [last + pd.Timedelta(seconds=1)],
                              "event_type": ["view"], "product_id": [DUMMY], "category": [None], "brand": [None],
                              "price": [np.nan]})
        work = Path(tempfile.mkdtemp(prefix="peers-", dir=self.workdir))
        try:
            cfg = self.run_config(write_canonical(events, work / "train"), write_canonical(dummy, work / "test"),
                                  work / "runs")
            L.seed_everything(self.seed, workers=True, verbose=False)  # as training.train.train does
            data = prepare(cfg)
            recorder = EpochRecorder()
            # The project's own final fit: early stopping on its validation day, then (train.refit) a refit
            # on train + validation for the chosen epochs, whose encoder then covers the validation items.
            module, best_val, data = fit_final(cfg, data, logger=False, run_id=None, callbacks=[recorder])
        finally:
            if not self.keep_workdir:
                shutil.rmtree(work, ignore_errors=True)
        model = module.model.cpu().eval()
        meta = {**data.base_rates(), "popularity_log_prob": data.log_popularity().tolist(), **data.priors()}
        self.predictor = SignalPredictor(model, data.encoder, meta)
        # Project product id -> harness column: token k of the vocabulary has id k + N_RESERVED (PAD and UNK
        # come first) and is str(item).
        tokens = data.encoder.products.to_list()
        keep = [k for k, t in enumerate(tokens) if t != DUMMY]
        ids = np.array(keep, dtype=np.int64) + N_RESERVED
        cols = np.array([int(tokens[k]) for k in keep], dtype=np.int64)
        assert (data.encoder.products.encode([tokens[k] for k in keep]) == ids).all()
        self._vocab_ids, self._item_cols = ids, cols
        known = np.zeros(n_items, dtype=bool)
        known[cols] = True
        val_start = data.dates.val_start
        train_ts = events["ts"]
        val_items = set(events.loc[train_ts >= val_start, "product_id"])
        self.fit_report = {
            "resolved": flatten(to_dict(cfg)),
            "split": data.dates.to_dict(),
            "events_train_window": int((train_ts < val_start).sum()),
            "events_val_window": int((train_ts >= val_start).sum()),
            "sessions_val_window": int(events.loc[train_ts >= val_start, "session_id"].nunique()),
            "windows_train": len(data.datasets[TRAIN]), "windows_val": len(data.datasets[VAL]),
            "catalogue_items": n_items, "items_in_vocabulary": int(known.sum()),
            "items_only_in_validation": len(val_items - set(events.loc[train_ts < val_start, "product_id"])),
            "epochs_run": len(recorder.epochs), "best_val": best_val,
            "best_epoch": _best_epoch(recorder.epochs, cfg.train.monitor),
            "epochs": recorder.epochs,
            "prefix_gap_seconds": self.gap_seconds,
            "fit_seconds": round(time.perf_counter() - t0, 1),
        }
        self.known_items = known
        log.info("fitted: %d epochs (best %s), %d of %d items in the vocabulary, %.0f s",
                 len(recorder.epochs), self.fit_report["best_epoch"], known.sum(), n_items,
                 self.fit_report["fit_seconds"])

    # ---- score ---------------------------------------------------------------------------------
    def encode_prefix(self, prefix: np.ndarray) -> dict[str, np.ndarray]:
        """One prefix -> the model's features, as `serving.request_encoding.encode_history` builds them for a
        request whose events are views of these products, `gap_seconds` apart, in one session."""
        window = self.predictor.window
        items = np.asarray(prefix, dtype=np.int64)[-window:]
        n = len(items)
        first_of_user = np.zeros(n, dtype=bool)
        first_of_user[0] = True
        starts_session = np.zeros(n, dtype=bool)
        starts_session[0] = True
        encoded = self.predictor.encoder.encode_columns(
            product_id=[str(int(i)) for i in items], category=[None] * n, brand=[None] * n,
            event_type=["view"] * n, price=np.full(n, np.nan), ts_seconds=np.arange(n, dtype=np.float64) * self.gap_seconds,
            first_of_user=first_of_user, starts_session=starts_session)
        whole = len(prefix)  # the history features count every view of the prefix, as serving counts a request's
        return with_whole_history(encoded, np.arange(whole) == 0, np.zeros(whole, dtype=bool),
                                  np.arange(whole, dtype=np.float64) * self.gap_seconds)

    def score(self, prefixes: list[np.ndarray]) -> np.ndarray:
        """(len(prefixes), n_items) log-probabilities; -inf for items the encoder does not know."""
        assert self.predictor is not None, "fit first"
        encoded = [self.encode_prefix(p) for p in prefixes]
        scores = self.predictor.score_encoded(encoded, np.zeros(len(prefixes)))
        out = np.full((len(prefixes), self.n_items), -np.inf, dtype=np.float32)
        out[:, self._item_cols] = scores.products[:, self._vocab_ids]
        return out


def _best_epoch(epochs: list[dict], monitor: str) -> int | None:
    values = [(e[monitor], e["epoch"]) for e in epochs if monitor in e and np.isfinite(e[monitor])]
    if not values:
        return None
    pick = min if "loss" in monitor else max
    return pick(values, key=lambda v: v[0])[1]
