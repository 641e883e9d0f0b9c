"""Small hand-made event tables for tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from events.loaders.events_io import write_events  # noqa: F401  (tests write finished loads with it)


T0 = pd.Timestamp("2026-01-01", tz="UTC")


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (user, session, minutes after T0, event_type, product[, category, brand, price])."""
    full = [tuple(r) + (None,) * (8 - len(r)) for r in rows]
    df = pd.DataFrame(full, columns=["user_id", "session_id", "minutes", "event_type", "product_id",
                                     "category", "brand", "price"])
    df["ts"] = (T0 + pd.to_timedelta(df.pop("minutes"), unit="min")).astype("datetime64[us, UTC]")
    df["price"] = df["price"].astype("float64")
    return df[["user_id", "session_id", "ts", "event_type", "product_id", "category", "brand", "price"]]


def random_events(n_users: int = 60, days: int = 30, n_products: int = 40, seed: int = 0) -> pd.DataFrame:
    """Random shoppers with a learnable pattern: sessions with a cart mostly end in a purchase."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = float(rng.uniform(0, 24 * 60 * 3))
        s = 0
        while t < days * 24 * 60:
            n = int(rng.integers(2, 9))
            buys = rng.random() < 0.3
            for k in range(n):
                p = int(rng.integers(0, n_products))
                et = "purchase" if buys and k == n - 1 else ("cart" if buys and k == n - 2 else "view")
                rows.append((f"u{u}", f"u{u}:{s}", t, et, f"p{p}", f"c{p % 5}", f"b{p % 3}", 5.0 + p))
                t += float(rng.exponential(2.0)) + 0.01
            s += 1
            t += float(rng.exponential(60 * 24 * 3))
    return events_frame(rows)


def tiny_run_overrides(data_dir: Path) -> list[str]:
    """Config overrides for a tiny training on `random_events`' 30 days: 5-day validation and test
    windows, a churn horizon that fits inside them, a narrow model."""
    return [f"data.path={data_dir}", "split.val_days=5", "split.test_days=5", "labels.churn_horizon_days=5",
            "labels.churn_lookback_days=10", "model.d_model=16"]


def apt_install_or_skip(package: str, what: str) -> None:
    """Install Debian's `package` for a test that needs `what` (PostgreSQL, Java) where it is missing; skip,
    saying why, where apt-get is missing or needs root. A failed install is a failure, not a skip."""
    import os
    import shutil
    import subprocess

    import pytest

    if shutil.which("apt-get") is None:
        pytest.skip(f"{what} is not installed and apt-get is unavailable to install it")
    if os.geteuid() != 0:
        pytest.skip(f"{what} is not installed and installing it with apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    done = subprocess.run(install, check=False, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # a stale package index: refresh it once
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, check=False, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"apt-get install {package} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
