"""The out-of-core path gives exactly what the in-memory path gives, reading every partition once."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from models.encoding import FEATURES
from models.network import SessionSignalsModel
from training.baselines.next_item import next_query_rows
from training.config import TrainRunConfig
from events.config_io import load_config
from training.metrics import binary_metrics, next_metrics
from training.labels import TEST, TRAIN, VAL
from training.window_predictions import predict
from events.schema import CANONICAL_SCHEMA
from training.streaming import dataset as streaming_dataset
from training.streaming.dataset import StreamingWindows, count_windows
from models.encoder_counts import quantiles_from_counts
from training.streaming.streamed_test import evaluate_streaming
from events.partitions import Manifest, partition_of, partition_path, MANIFEST
from training.in_memory import prepare_in_memory
from training.streaming.prepare import prepare_streaming
from training.windows import split_batch
from events.loaders.events_io import mark_finished
from tests.factories import random_events, tiny_run_overrides

K = 5


def config(data_dir, tmp_path, *extra: str) -> TrainRunConfig:
    return load_config(TrainRunConfig, None, [
        *tiny_run_overrides(data_dir), "model.max_len=8", f"data.partitions={K}",
        f"data.partition_dir={tmp_path}/parts", f"output_dir={tmp_path}/runs", *extra])


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream")
    data = tmp / "data"
    data.mkdir()
    events = random_events(n_users=70, days=30, n_products=60, seed=3)
    events.loc[events.index % 7 == 0, "brand"] = None  # missing values take the same path in both
    events.loc[events.index % 11 == 0, "price"] = np.nan
    table = pa.Table.from_pandas(events, schema=CANONICAL_SCHEMA, preserve_index=False)
    with pq.ParquetWriter(data / "events.parquet", CANONICAL_SCHEMA) as w:  # several row groups, like the simulator
        for start in range(0, table.num_rows, 1000):
            w.write_table(table.slice(start, 1000))
    mark_finished(events, data)
    cfg = config(data, tmp)
    return cfg, prepare_in_memory(cfg), prepare_streaming(cfg), tmp


def streamed(ds) -> list[dict[str, torch.Tensor]]:
    """The windows of a streaming dataset, which yields whole batches."""
    return [window for batch in ds for window in split_batch(batch)]


def window_key(item: dict[str, torch.Tensor]) -> bytes:
    """A window's features and labels (row numbers are per partition, so they are left out)."""
    names = (*FEATURES, "intent", "next_product", "next_category", "next_brand", "churn_pos", "churn_gap", "churn_label")
    return b"|".join(item[n].numpy().tobytes() for n in names)


def test_encoder_from_streamed_counts_equals_fit_on_the_training_window(both) -> None:
    _, mem, st, _ = both
    assert st.dates == mem.dates
    assert st.encoder.to_dict() == mem.encoder.to_dict()  # vocabularies, price edges bit for bit, roll-ups
    assert st.counts.n_events == mem.counts.n_events
    for field in ("products", "categories", "brands"):  # pyarrow's streamed counts = pandas' counts in memory
        vocab = getattr(st.encoder, field)
        assert st.counts.id_counts(vocab, field).tolist() == mem.counts.id_counts(vocab, field).tolist()
    np.testing.assert_array_equal(st.log_popularity(), mem.log_popularity())
    assert st.priors() == mem.priors()


@pytest.mark.parametrize("split", [TRAIN, VAL, TEST])
def test_streaming_yields_the_same_labelled_windows(both, split) -> None:
    _, mem, st, _ = both
    expected = sorted(window_key(mem.datasets[split][i]) for i in range(len(mem.datasets[split])))
    got = sorted(window_key(item) for item in streamed(st.datasets[split]))
    assert len(expected) > 0
    assert got == expected


def test_every_user_in_one_partition_and_the_hash_is_stable(both) -> None:
    _, _, st, _ = both
    users = [set(pq.read_table(partition_path(st.folder, k), columns=["user_id"]).column(0).to_pylist())
             for k in range(K)]
    assert sum(len(u) for u in users) == len(set().union(*users)) == 70
    ids = pa.array(["u0", "u1", "u2", "u0"])
    assert partition_of(ids, 7).tolist() == partition_of(ids, 7).tolist()
    assert partition_of(ids, 7)[0] == partition_of(ids, 7)[3]
    manifest = Manifest.from_json((st.folder / MANIFEST).read_text())
    assert manifest.n_rows == sum(pq.ParquetFile(partition_path(st.folder, k)).metadata.num_rows for k in range(K))


def test_repartition_is_reused_when_the_source_is_unchanged(both) -> None:
    cfg, _, st, _ = both
    before = [partition_path(st.folder, k).stat().st_mtime_ns for k in range(K)]
    prepare_streaming(cfg)
    assert [partition_path(st.folder, k).stat().st_mtime_ns for k in range(K)] == before


def _as_worker(monkeypatch, worker: int, n_workers: int) -> None:
    monkeypatch.setattr(streaming_dataset, "get_worker_info", lambda: SimpleNamespace(id=worker, num_workers=n_workers))


def test_each_partition_read_once_across_two_workers(both, monkeypatch) -> None:
    _, mem, st, _ = both
    train = st.datasets[TRAIN]
    for epoch in range(2):
        logs, keys = [], []
        for worker in range(2):
            ds = copy.deepcopy(train)
            ds.set_epoch(epoch)
            ds.read_log = []
            _as_worker(monkeypatch, worker, 2)
            keys += [window_key(item) for item in streamed(ds)]
            logs.append(ds.read_log)
        assert sorted(logs[0] + logs[1]) == list(range(K))
        assert not set(logs[0]) & set(logs[1])
        assert sorted(keys) == sorted(window_key(mem.datasets[TRAIN][i]) for i in range(len(mem.datasets[TRAIN])))


def test_partition_order_changes_with_the_epoch_and_is_seeded(both) -> None:
    _, _, st, _ = both
    ds = copy.deepcopy(st.datasets[TRAIN])
    first = [window_key(x) for x in streamed(ds)]  # epoch 0
    second = [window_key(x) for x in streamed(ds)]  # epoch 1
    again = copy.deepcopy(st.datasets[TRAIN])
    assert [window_key(x) for x in streamed(again)] == first
    assert sorted(first) == sorted(second) and first != second


def test_ddp_ranks_and_workers_yield_the_same_whole_batches(both, monkeypatch) -> None:
    _, _, st, _ = both
    counts = count_windows(st.ctx, TRAIN)
    assert sum(counts) == len(streamed(st.datasets[TRAIN]))
    per_shard, seen = [], []
    for rank in range(2):
        for worker in range(2):
            ds = StreamingWindows(st.ctx, TRAIN, shuffle=True, seed=1, windows_per_partition=counts, batch_size=4,
                                  rank=rank, world_size=2)
            _as_worker(monkeypatch, worker, 2)
            sizes = [len(batch["product"]) for batch in ds]
            assert set(sizes) == {4}  # whole batches only, across partition boundaries too
            per_shard.append(len(sizes))
            seen += ds.read_log
    assert len(set(per_shard)) == 1 and per_shard[0] > 0
    assert len(seen) == len(set(seen))  # no partition read twice


def test_quantiles_from_counts_match_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 17, 1000):
        values = np.round(rng.lognormal(3, 1, n), 2)
        uniq, counts = np.unique(values, return_counts=True)
        q = np.linspace(0, 1, 17)[1:-1]
        np.testing.assert_array_equal(quantiles_from_counts(np.log1p(uniq), counts, q), np.quantile(np.log1p(values), q))


def test_streamed_evaluation_equals_in_memory_evaluation(both) -> None:
    _, mem, st, _ = both
    torch.manual_seed(0)
    model = SessionSignalsModel(mem.model_cfg).eval()
    pred = predict(model, mem.datasets[TEST])
    labels = mem.labels
    rows = np.flatnonzero((labels.intent_split == TEST) & (labels.intent >= 0))
    keys = labels.churn.index[labels.churn["split"] == TEST].to_numpy()
    expected = binary_metrics("intent", labels.intent[rows], pred.intent.reindex(rows).to_numpy())
    expected |= binary_metrics("churn", labels.churn.loc[keys, "label"].to_numpy(), pred.churn.reindex(keys).to_numpy())
    expected |= next_metrics(pred.next_rank.reindex(next_query_rows(labels, mem.encoder, TEST)).to_numpy())
    got = evaluate_streaming(model, st.ctx).metrics()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_too_few_partitions_for_the_readers_is_a_clear_error(both) -> None:
    from events.errors import UserFacingError
    from training.streaming.prepare import n_partitions

    cfg, _, _, _ = both
    cfg = copy.deepcopy(cfg)
    cfg.data.partitions, cfg.train.num_workers = 2, 4
    with pytest.raises(UserFacingError, match="data.partitions"):
        n_partitions(cfg, 1000)
    cfg.data.partitions = 0
    assert n_partitions(cfg, 1000) == 4  # auto: at least one per reader


@pytest.mark.e2e
def test_train_streaming_end_to_end(both) -> None:
    """Lightning over the streamed windows (train and validation), streamed test metrics, a tracked run."""
    import mlflow
    from mlflow import MlflowClient

    from training.train import train

    cfg, _, _, tmp = both
    cfg = copy.deepcopy(cfg)
    cfg.train.max_epochs, cfg.train.progress_bar, cfg.train.batch_size = 2, False, 32
    cfg.train.num_workers = 2  # partitions split across two persistent worker processes
    cfg.tracking.uri = f"sqlite:///{tmp}/mlflow.db"
    cfg.data.streaming = True
    result = train(cfg)
    metrics = result["metrics"]["model"]
    for key in ("intent_pr_auc", "churn_pr_auc", "next_mrr_at_20", "next_recall_at_20"):
        assert key in metrics
    mlflow.set_tracking_uri(result["tracking_uri"])
    run = MlflowClient().get_run(result["model_run_id"])
    assert "test_next_mrr_at_20" in run.data.metrics and len(MlflowClient().get_metric_history(run.info.run_id, "val_loss")) == 2
    parent = MlflowClient().get_run(result["parent_run_id"])
    assert parent.data.tags["data_path"] == "streaming" and parent.data.params["lineage.partitions"] == str(K)


@pytest.mark.e2e
def test_signals_train_streams_the_embedded_default_data(tmp_path, monkeypatch) -> None:
    """`signals train data.streaming=true` with no data.path: the simulated shop, streamed (it once crashed)."""
    from cli.main import main

    monkeypatch.chdir(tmp_path)  # data/generated and mlruns/ are relative to the working folder
    code = main(["train", "data.streaming=true", "data.simulate_events=8000", "model.d_model=16", "train.max_epochs=1",
                 "train.progress_bar=false", "tracking.register=false", f"--tracking-uri=sqlite:///{tmp_path}/m.db"])
    assert code == 0
    assert (tmp_path / "data/generated/sim-8000-seed7-h7/events.parquet").is_file()
    assert any((tmp_path / "data/generated/partitions").iterdir())
