"""The experiment's configuration and its split: bad files stop with the key named, the realised split is
the configured one, a shopper's arm depends on nothing but the two names, a changed share moves only the
shoppers it must."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from events.errors import UserFacingError
from serving.experiment import BUCKETS, AssignmentLogConfig, PinnedArm, PinnedExperiment, Split, bucket, load_experiment

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "name": "exp-1", "control": "champion",
    "arms": [{"name": "champion", "alias": "champion", "share": 0.85},
             {"name": "challenger", "alias": "challenger", "share": 0.10},
             {"name": "holdout", "holdout": True, "share": 0.05}],
    "log": {"dir": "somewhere"},
}


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def with_arms(**changes) -> dict:
    arms = [dict(a) for a in GOOD["arms"]]
    for index_key, value in changes.items():
        index, key = index_key.split("_", 1)
        arms[int(index.removeprefix("a"))][key] = value
    return {**GOOD, "arms": arms}


def test_the_shipped_config_is_valid() -> None:
    config = load_experiment(ROOT / "configs" / "experiment.yaml")
    assert config.control == "champion" and abs(sum(a.share for a in config.arms) - 1) < 1e-9


@pytest.mark.parametrize(("config", "names"), [
    (with_arms(a1_share=0.2), ["arms[*].share", "sum to 1.1"]),
    ({**GOOD, "arms": GOOD["arms"] + [{"name": "champion", "alias": "challenger", "share": 0.0001}]},
     ["arms[3].name", "duplicate arm 'champion'"]),
    (with_arms(a1_share=0.09995, a0_share=0.85005), ["arms[0].share", "finer than"]),
    (with_arms(a0_alias=None), ["arms[0]", "exactly one of alias, version, bundle or holdout"]),
    (with_arms(a1_version=3), ["arms[1]", "got alias, version"]),
    (with_arms(a0_colour="red"), ["arms[0].colour"]),
    ({**GOOD, "control": "nobody"}, ["control", "'nobody' is not an arm"]),
    ({**GOOD, "control": "holdout"}, ["control", "is the holdout"]),
    ({**GOOD, "name": "has space"}, ["name", "'has space'"]),
    ({**GOOD, "log": {"dir": "x", "queue": 5}}, ["log.queue"]),
    ({**GOOD, "arms": GOOD["arms"][:1]}, ["arms", "at least two"]),
])
def test_a_bad_config_is_refused_naming_the_file_and_the_key(tmp_path, config, names) -> None:
    path = write(tmp_path, config)
    with pytest.raises(UserFacingError) as err:
        load_experiment(path)
    for name in [str(path), *names]:
        assert name in str(err.value)


def test_the_realised_split_of_100k_ids_is_within_half_a_point_of_the_configured_one() -> None:
    shares = {"champion": 0.85, "challenger": 0.10, "holdout": 0.05}
    split = Split("exp-1", list(shares), list(shares.values()))
    counts = Counter(split.arm_of(f"user-{i}") for i in range(100_000))
    for arm, share in shares.items():
        assert abs(counts[arm] / 100_000 - share) < 0.005, (arm, counts)


def test_the_bucket_depends_on_the_experiment_and_the_user_only() -> None:
    # fixed values: a change of the hash would silently reshuffle every running experiment
    assert bucket("exp-1", "u1") == 6308  # SHA-256("exp-1:u1")[:8] big-endian mod 10,000
    buckets = [bucket("exp-1", f"u{i}") for i in range(20_000)]
    assert min(buckets) >= 0 and max(buckets) < BUCKETS
    other = [bucket("exp-2", f"u{i}") for i in range(20_000)]
    same = sum(a == b for a, b in zip(buckets, other))
    assert same < 20  # another experiment's split is independent (about 2 expected by chance)


def test_growing_the_challenger_moves_only_shoppers_into_the_challenger() -> None:
    before = Split("exp-1", ["champion", "challenger"], [0.9, 0.1])
    after = Split("exp-1", ["champion", "challenger"], [0.8, 0.2])
    users = [f"u{i}" for i in range(50_000)]
    moves = Counter((before.arm_of(u), after.arm_of(u)) for u in users if before.arm_of(u) != after.arm_of(u))
    assert set(moves) == {("champion", "challenger")}
    assert abs(moves[("champion", "challenger")] / len(users) - 0.1) < 0.005


def test_the_pinned_experiment_reaches_the_workers_whole() -> None:
    pinned = PinnedExperiment("exp-1", "a", (PinnedArm("a", 0.5, "/b/a", {"name": "m", "version": "3", "run_id": "r"}),
                                             PinnedArm("h", 0.5, None, None)), AssignmentLogConfig("/x", max_file_mb=1.0))
    again = PinnedExperiment.from_json(pinned.to_json())
    assert again == pinned and again.log == pinned.log
