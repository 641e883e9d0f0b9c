"""The one typed config of a training run: YAML file + `key=value` overrides, logged whole to MLflow."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from models.network import ArchitectureConfig


@dataclass
class DataConfig:
    path: str = ""  # a folder with events.parquet (from `signals load` / `signals simulate`); "" = simulate
    name: str = ""  # dataset name for lineage and the champion rule; defaults to the folder name
    simulate_events: int = 100_000  # size of the embedded simulated dataset when path is ""
    simulate_seed: int = 7
    test_path: str = ""  # optional separate test events (e.g. YooChoose test file); then split.test_days is unused
    # Out-of-core path (training/streaming): events repartitioned by user hash into Parquet files and
    # streamed one partition per DataLoader worker; memory stays flat as the data grows.
    streaming: bool = False
    partitions: int = 0  # number of user-hash partitions; 0 = auto (one per `partition_events` events)
    partition_events: int = 1_000_000  # auto partitioning target; peak memory scales with it, not the data
    partition_dir: str = ""  # where partitions are written; "" = data/generated/partitions/<name>-<sha>-k<K>


@dataclass
class SplitConfig:
    """Temporal split counted back from the last event: [.. val_start) train, [val_start, test_start) val, [test_start ..] test."""
    val_days: float = 7.0
    test_days: float = 7.0


@dataclass
class LabelConfig:
    churn_horizon_days: float = 7.0  # churn = no purchase in (T, T + horizon]
    churn_lookback_days: float = 28.0  # customers with a purchase in [T - lookback, T) are scored at T
    churn_cutoff_step_days: float = 1.0  # spacing of training cutoffs
    min_count: int = 1  # products/categories/brands seen fewer times in training become UNK


@dataclass
class TrainConfig:
    max_epochs: int = 30  # an upper bound: early stopping ends training (demo: best epoch 12-16, benchmarks/quality/ABLATION.md)
    batch_size: int = 128
    lr: float = 3e-3
    # "cosine": the rate falls to lr / 20 along a half cosine over max_epochs, by epoch, so early stopping sees a
    # less noisy plateau and the refit on train + validation replays the same rates for its epoch count.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    weight_decay: float = 1e-5
    patience: int = 5  # epochs without improvement of `monitor` before early stopping
    monitor: str = "val_score"  # mean of the validation primary metrics available
    # Measured on simulated data (benchmarks/quality/ABLATION.md): with the side features, 2 / 1 beat 5 / 2 on
    # validation; heavier binary heads overfit the shared encoder while next product is still learning.
    intent_weight: float = 2.0
    churn_weight: float = 1.0
    next_weight: float = 1.0
    affinity_weight: float = 0.2  # next category + next brand
    next_loss: Literal["full", "sampled"] = "full"  # sampled: log-Q corrected, for very large catalogues
    n_negatives: int = 8192  # shared popularity-sampled negatives per batch (next_loss=sampled; see benchmarks)
    negative_power: float = 0.5  # negatives drawn ~ popularity ** power: 1 = popularity, 0 = uniform (0.5 measured best)
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"  # "ddp" for several devices or nodes (see README: multi-GPU and clusters)
    precision: str = "32-true"  # "bf16-mixed" on a GPU
    compile: bool = False  # torch.compile the training step: 2-3x on a GPU; minutes of compiling on a small CPU
    # Bit-for-bit repeatable runs (torch.use_deterministic_algorithms). Costs nothing eager, but a compiled
    # GPU step falls back to a slow deterministic scatter-add for its embedding gradients: 4x slower on an
    # H100 (benchmarks/TRAINING.md). Turn it off for fast GPU training.
    deterministic: bool = True
    seed: int = 42
    num_workers: int = 0
    # torch's intra-op threads; 0 = half the cores this process may use (at least 1). torch's own default
    # (every core) thrashes when anything else shares them: an epoch of 14 s took 210 s beside one other job.
    threads: int = 0
    # Final model: refit a fresh model on train + validation for the epoch count early stopping chose, so the
    # validation window's events (and products first seen there) train it. In-memory data only.
    refit: bool = False
    limit_train_batches: float = 1.0
    progress_bar: bool = True


@dataclass
class BaselineConfig:
    enabled: bool = True
    vsknn_neighbours: int = 100
    vsknn_sample_sessions: int = 2000  # most recent training sessions considered as neighbours


@dataclass
class TrackingConfig:
    uri: str = ""  # "" = $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db
    experiment: str = "session-signals"
    register: bool = True
    model_name: str = "session-signals"
    promote: Literal["auto", "always", "never"] = "auto"  # auto = the champion rule in the README


@dataclass
class TrainRunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    model: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    output_dir: str = "data/generated/runs"
