"""The statistics the simulator's defaults are calibrated on, measured the same way on the real samples
in ../shared/datasets and on a simulation; prints the comparison as a Markdown table.

    python -m events.simulator.calibration [--datasets ../shared/datasets] [--events 300000]

Taobao has no sessions: they are cut at 30 minutes of inactivity, and its times are shifted to local
time (UTC+8) for the hour-of-day figures. Online Retail and CDNOW are purchase logs: they only give
the repeat-purchase figures.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW_DAYS = 9          # Taobao's span: sessions per user and visit gaps are measured over such a window
CHURN_HORIZON_DAYS = 14
CHURN_LOOKBACK_DAYS = 30
POPULARITY_SAMPLE = 5_000

ROWS = [
    ("view share", "view_share", "{:.3f}"),
    ("cart share", "cart_share", "{:.3f}"),
    ("remove_from_cart share", "remove_share", "{:.3f}"),
    ("purchase share", "purchase_share", "{:.3f}"),
    ("events per session: mean", "events_mean", "{:.2f}"),
    ("events per session: median / p90", "events_median_p90", "{}"),
    ("sessions with a purchase", "conversion", "{:.3f}"),
    ("sessions with a cart that end without purchase", "abandonment", "{:.3f}"),
    ("repeated product views within a session", "repeat_product", "{:.3f}"),
    ("distinct categories per session", "categories_per_session", "{:.2f}"),
    ("seconds between events: median / p90", "dwell_median_p90", "{}"),
    ("sessions per user in 9 days: mean / median", "sessions_per_user", "{}"),
    ("hours between visits (9 days): median / p90", "visit_gap_median_p90", "{}"),
    ("session starts 18-24 h local / 0-6 h local", "evening_night", "{}"),
    ("views on the top 10% of viewed products (5,000-event sample)", "top_decile_views", "{:.2f}"),
    ("log price of viewed products: mean / sd", "log_price", "{}"),
    ("log price sd within a category", "log_price_within", "{:.2f}"),
    ("brand missing", "brand_missing", "{:.3f}"),
    ("days between purchases: median", "purchase_gap_days", "{:.1f}"),
    ("no purchase in next 14 days, buyers of last 30 days", "churn_14d", "{:.2f}"),
]


def session_stats(events: pd.DataFrame, local_hours_offset: int = 0) -> dict[str, object]:
    """Figures over a canonical-like event frame (user_id, session_id, ts, event_type, product_id,
    category, brand, price), sorted by user and time."""
    out: dict[str, object] = {}
    mix = events.event_type.value_counts(normalize=True)
    for name in ("view", "cart", "remove_from_cart", "purchase"):
        out[("remove" if name == "remove_from_cart" else name) + "_share"] = float(mix.get(name, np.nan))
    by_session = events.groupby("session_id", sort=False)
    length = by_session.size()
    out["events_mean"] = float(length.mean())
    out["events_median_p90"] = f"{length.median():.0f} / {length.quantile(0.9):.0f}"
    types = by_session.event_type
    purchased = types.agg(lambda s: (s == "purchase").any())
    carted = types.agg(lambda s: (s == "cart").any())
    out["conversion"] = float(purchased.mean())
    out["abandonment"] = float(1 - purchased[carted].mean()) if carted.any() else float("nan")
    views = events[events.event_type == "view"]
    out["repeat_product"] = float(views.duplicated(["session_id", "product_id"]).mean())
    out["categories_per_session"] = float(by_session.category.nunique().mean())
    # Popularity concentration depends on sample size, so it is measured on samples of REES46's size.
    sample = views.sample(n=min(len(views), POPULARITY_SAMPLE), random_state=0)
    counts = sample.product_id.value_counts().to_numpy()
    out["top_decile_views"] = float(counts[:max(1, len(counts) // 10)].sum() / counts.sum())
    dwell = by_session.ts.diff().dt.total_seconds().dropna()
    out["dwell_median_p90"] = f"{dwell.median():.0f} / {dwell.quantile(0.9):.0f}"
    starts = by_session.ts.min()
    hour = (starts.dt.hour + local_hours_offset) % 24
    whole_days = events.ts.max() - events.ts.min() >= pd.Timedelta(days=1)
    out["evening_night"] = f"{(hour >= 18).mean():.2f} / {(hour < 6).mean():.2f}" if whole_days else "-"
    priced = views.price.dropna()
    priced = priced[priced > 0]
    out["log_price"] = f"{np.log(priced).mean():.2f} / {np.log(priced).std():.2f}" if len(priced) else "-"
    within = views[views.price > 0].groupby("category").price.agg(lambda p: np.log(p).std()).dropna()
    out["log_price_within"] = float(within.median()) if len(within) else float("nan")
    out["brand_missing"] = float(events.brand.isna().mean()) if events.brand.notna().any() else float("nan")
    out.update(_visit_stats(events, by_session))
    return out


def _visit_stats(events: pd.DataFrame, by_session) -> dict[str, object]:
    """Sessions per user and gaps between visits over the last WINDOW_DAYS days of the data (late in a
    simulation most customers have been around for a while, as in Taobao's sample)."""
    sessions = pd.DataFrame({"user_id": by_session.user_id.first(), "start": by_session.ts.min(),
                             "end": by_session.ts.max()})
    last = sessions.start.max().normalize() + pd.Timedelta(days=1)
    window = sessions[sessions.start >= last - pd.Timedelta(days=WINDOW_DAYS)].sort_values(["user_id", "start"])
    per_user = window.groupby("user_id").size()
    gap_hours = (window.start - window.groupby("user_id").end.shift()).dt.total_seconds().dropna() / 3600
    if events.ts.max() - events.ts.min() < pd.Timedelta(days=1):   # REES46's head covers 2.5 hours
        return {"sessions_per_user": "-", "visit_gap_median_p90": "-"}
    return {"sessions_per_user": f"{per_user.mean():.1f} / {per_user.median():.0f}",
            "visit_gap_median_p90": f"{gap_hours.median():.1f} / {gap_hours.quantile(0.9):.1f}"}


def purchase_stats(purchases: pd.DataFrame) -> dict[str, object]:
    """From purchase times (user_id, ts): median days between a customer's purchase days, and the share
    of customers who bought in the last 30 days that buy nothing in the next 14 (weekly cutoffs)."""
    days = purchases.assign(day=purchases.ts.dt.floor("D"))[["user_id", "day"]].drop_duplicates()
    days = days.sort_values(["user_id", "day"])
    gaps = days.groupby("user_id").day.diff().dt.days.dropna()
    start, end = days.day.min(), days.day.max()
    rates = []
    cutoff = start + pd.Timedelta(days=CHURN_LOOKBACK_DAYS)
    while cutoff + pd.Timedelta(days=CHURN_HORIZON_DAYS) <= end:
        recent = set(days[(days.day < cutoff) & (days.day >= cutoff - pd.Timedelta(days=CHURN_LOOKBACK_DAYS))].user_id)
        later = set(days[(days.day >= cutoff) & (days.day < cutoff + pd.Timedelta(days=CHURN_HORIZON_DAYS))].user_id)
        if recent:
            rates.append(len(recent - later) / len(recent))
        cutoff += pd.Timedelta(days=7)
    return {"purchase_gap_days": float(gaps.median()) if len(gaps) else float("nan"),
            "churn_14d": float(np.mean(rates)) if rates else float("nan")}


def load_canonical(format_name: str, path: Path) -> pd.DataFrame:
    """A real sample through the project's own loader (same sessions, ranges and type mapping as training)."""
    from events.loaders import load_events, read_events

    with tempfile.TemporaryDirectory() as tmp:
        load_events(format_name, [path], Path(tmp))
        return read_events(tmp).sort_values(["user_id", "ts"], kind="stable")


def read_cdnow_purchases(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["user", "date", "n", "usd"], dtype=str)
    raw = raw[raw.date.str.fullmatch(r"\d{8}")]
    return pd.DataFrame({"user_id": raw.user, "ts": pd.to_datetime(raw.date, format="%Y%m%d", utc=True)})


def real_figures(datasets: Path) -> dict[str, dict[str, object]]:
    taobao = load_canonical("taobao", datasets / "taobao" / "UserBehavior-even-users.csv")
    retail = load_canonical("online-retail", datasets / "online-retail" / "online_retail_I_2010-2011.parquet")
    return {
        "REES46 head": session_stats(load_canonical("rees46", datasets / "rees46" / "2019-Oct-head.csv")),
        "Taobao": {**session_stats(taobao, local_hours_offset=8),
                   **purchase_stats(taobao[taobao.event_type == "purchase"])},
        "Online Retail": purchase_stats(retail),
        "CDNOW": purchase_stats(read_cdnow_purchases(datasets / "cdnow" / "CDNOW_master.txt")),
    }


def simulated_figures(events: int, seed: int = 0) -> dict[str, object]:
    from events.simulator import SimulatorConfig, simulate

    with tempfile.TemporaryDirectory() as tmp:
        simulate(SimulatorConfig(seed=seed), tmp, target_events=events)
        frame = pd.read_parquet(Path(tmp) / "events.parquet")
    return {**session_stats(frame), **purchase_stats(frame[frame.event_type == "purchase"])}


def markdown_table(columns: dict[str, dict[str, object]]) -> str:
    names = list(columns)
    lines = ["| figure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key, fmt in ROWS:
        cells = []
        for name in names:
            value = columns[name].get(key)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                cells.append("-")
            else:
                cells.append(fmt.format(value) if not isinstance(value, str) else value)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "datasets")
    parser.add_argument("--events", type=int, default=300_000, help="size of the simulation to measure")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    columns = real_figures(args.datasets)
    columns[f"simulated ({args.events:,} events)"] = simulated_figures(args.events, args.seed)
    print(markdown_table(columns))


if __name__ == "__main__":
    main()
