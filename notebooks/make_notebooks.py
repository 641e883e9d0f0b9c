"""Writes the notebooks from plain cell lists, outputs stripped (git keeps code, not results).

Run `python notebooks/make_notebooks.py` after editing a notebook's cells here; the tests execute them.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).parent

EXPLORE_EVENTS = [
    ("md", "# Explore events: funnel, sessions, conversion, and the simulator beside real shops\n\n"
           "Loads the shipped REES46 sample with `signals load`'s loader, simulates a small shop with the "
           "embedded simulator, and puts them side by side (plus the real samples in `../shared/datasets` "
           "when present): funnel counts, session lengths, conversion and cart-abandonment rates, top "
           "categories and brands."),
    ("code", "import os, tempfile\nfrom pathlib import Path\n\nimport matplotlib.pyplot as plt\nimport pandas as pd\n\n"
             "from events.loaders import load_events, read_events\n"
             "from events.simulator import load_simulator_config, simulate\n"
             "from events.simulator.calibration import markdown_table, session_stats\n\n"
             "ROOT = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
             "work = Path(tempfile.mkdtemp())\n"
             "SIM_EVENTS = int(os.environ.get('NOTEBOOK_SIM_EVENTS', 60000))"),
    ("code", "datasets = {}\n"
             "report = load_events('rees46', [ROOT / 'data/samples/rees46-2019-Oct-head.csv'], work / 'rees46')\n"
             "datasets['REES46 sample'] = read_events(work / 'rees46')\n"
             "taobao = ROOT.parent / 'shared/datasets/taobao/UserBehavior-even-users.csv'\n"
             "if taobao.is_file():\n"
             "    load_events('taobao', [taobao], work / 'taobao')\n"
             "    datasets['Taobao (even users)'] = read_events(work / 'taobao')\n"
             "simulate(load_simulator_config(None, ['seed=1']), work / 'sim', target_events=SIM_EVENTS)\n"
             "datasets['simulated (defaults)'] = read_events(work / 'sim')\n"
             "{name: len(df) for name, df in datasets.items()}"),
    ("md", "## Funnel: how often each event type occurs"),
    ("code", "funnel = pd.DataFrame({name: df['event_type'].value_counts(normalize=True) for name, df in datasets.items()}).fillna(0)\n"
             "ax = funnel.loc[[t for t in ['view', 'cart', 'remove_from_cart', 'purchase'] if t in funnel.index]].plot.bar(logy=True, figsize=(7, 3.5))\n"
             "ax.set_ylabel('share of events (log)'); ax.set_title('event-type mix')\n"
             "funnel.round(4)"),
    ("md", "## Sessions: length, conversion and cart abandonment"),
    ("code", "def per_session(df):\n"
             "    g = df.groupby('session_id')['event_type']\n"
             "    return pd.DataFrame({'events': g.size(), 'purchase': g.apply(lambda s: (s == 'purchase').any()),\n"
             "                         'cart': g.apply(lambda s: (s == 'cart').any())})\n\n"
             "sessions = {name: per_session(df) for name, df in datasets.items()}\n"
             "fig, ax = plt.subplots(figsize=(7, 3.5))\n"
             "for name, s in sessions.items():\n"
             "    s['events'].clip(upper=30).plot.hist(bins=30, density=True, histtype='step', ax=ax, label=name)\n"
             "ax.set_xlabel('events per session (clipped at 30)'); ax.legend()\n"
             "pd.DataFrame({name: {'sessions': len(s), 'mean events': s['events'].mean(),\n"
             "                     'conversion rate': s['purchase'].mean(),\n"
             "                     'cart abandonment': 1 - s.loc[s['cart'], 'purchase'].mean() if s['cart'].any() else float('nan')}\n"
             "              for name, s in sessions.items()}).round(3)"),
    ("md", "## Top categories and brands"),
    ("code", "fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 3 * len(datasets)), squeeze=False)\n"
             "for row, (name, df) in zip(axes, datasets.items()):\n"
             "    for ax, col in zip(row, ['category', 'brand']):\n"
             "        top = df[col].value_counts().head(10)\n"
             "        if len(top):\n"
             "            top[::-1].plot.barh(ax=ax)\n"
             "        ax.set_title(f'{name}: top {col}s')\n"
             "fig.tight_layout()"),
    ("md", "## The simulator's defaults beside the real samples\n\nThe statistics the simulator is "
           "calibrated on (`python -m events.simulator.calibration` prints the full table)."),
    ("code", "from IPython.display import Markdown\n"
             "figures = {name: session_stats(df.sort_values(['user_id', 'ts'])) for name, df in datasets.items()}\n"
             "Markdown(markdown_table(figures))"),
]

COMPARE_RUNS = [
    ("md", "# Compare runs: the model beside its baselines\n\n"
           "Pulls every training run from MLflow (the embedded store by default, or `MLFLOW_TRACKING_URI`) and "
           "draws what a reviewer needs: per task, the model against each baseline on the same split, and how "
           "the model's primary metrics moved across runs."),
    ("code", "import os\nfrom pathlib import Path\n\nimport matplotlib.pyplot as plt\nimport mlflow\nimport pandas as pd\n\n"
             "default_store = 'sqlite:///' + str((Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()) / 'mlruns' / 'mlflow.db')\n"
             "mlflow.set_tracking_uri(os.environ.get('MLFLOW_TRACKING_URI', default_store))\n"
             "runs = mlflow.search_runs(experiment_names=['session-signals'], order_by=['start_time ASC'])\n"
             "print(f'{len(runs)} runs in {mlflow.get_tracking_uri()}')"),
    ("md", "Every method of a training run is a child run of it, tagged with `method`; all carry the same "
           "metric names (`test_intent_pr_auc`, `test_next_mrr_at_20`, ...)."),
    ("code", "children = runs[runs['tags.mlflow.parentRunId'].notna() & runs['tags.method'].notna()].copy()\n"
             "parents = runs[runs['tags.role'] == 'parent'].set_index('run_id')\n"
             "children['training'] = children['tags.mlflow.parentRunId'].map(parents['tags.mlflow.runName'])\n"
             "children['dataset'] = children['tags.dataset']\n"
             "PRIMARY = ['test_intent_pr_auc', 'test_churn_pr_auc', 'test_next_mrr_at_20', 'test_next_recall_at_20']\n"
             "metric_cols = [f'metrics.{m}' for m in PRIMARY if f'metrics.{m}' in children]\n"
             "latest_parent = children['tags.mlflow.parentRunId'].iloc[-1]\n"
             "latest = children[children['tags.mlflow.parentRunId'] == latest_parent]\n"
             "table = latest.set_index('tags.method')[metric_cols].rename(columns=lambda c: c.removeprefix('metrics.test_'))\n"
             "table"),
    ("code", "fig, axes = plt.subplots(1, len(table.columns), figsize=(4 * len(table.columns), 3.5))\n"
             "for ax, col in zip(axes if len(table.columns) > 1 else [axes], table.columns):\n"
             "    values = table[col].dropna().sort_values()\n"
             "    colors = ['tab:red' if m == 'model' else 'tab:grey' if m == 'oracle' else 'tab:blue' for m in values.index]\n"
             "    ax.barh(values.index, values.values, color=colors)\n"
             "    ax.set_title(col)\n"
             "fig.suptitle('latest run: model (red) vs baselines (blue) and oracle (grey), same test split')\n"
             "fig.tight_layout()"),
    ("md", "Across runs: the model's primary metrics per training run, with the best baseline of the same run "
           "as a dashed line, so an improvement that only follows easier data is visible."),
    ("code", "model_runs = children[children['tags.method'] == 'model']\n"
             "baselines = children[~children['tags.method'].isin(['model', 'oracle'])]\n"
             "fig, axes = plt.subplots(1, len(metric_cols), figsize=(4 * len(metric_cols), 3.5), squeeze=False)\n"
             "for ax, col in zip(axes[0], metric_cols):\n"
             "    x = range(len(model_runs))\n"
             "    ax.plot(x, model_runs[col].values, marker='o', label='model')\n"
             "    best = baselines.groupby('tags.mlflow.parentRunId')[col].max().reindex(model_runs['tags.mlflow.parentRunId'])\n"
             "    ax.plot(x, best.values, '--', marker='x', label='best baseline')\n"
             "    ax.set_title(col.removeprefix('metrics.test_'))\n"
             "    ax.set_xlabel('training run (oldest first)')\n"
             "axes[0][0].legend()\n"
             "fig.tight_layout()"),
]

EXPERIMENT_READOUT = [
    ("md", "# Experiment readout: conversion and revenue per arm, and whether the split held\n\n"
           "`signals serve --experiment FILE` splits shoppers between arms by a stable hash of their `user_id` and "
           "logs every exposure; `signals experiment report --log DIR --events DIR` joins that log with the "
           "purchases that followed. This notebook runs the same readout on a **simulated** experiment whose "
           "effect is known (`experiments/simulated.py`: the treatment converts at 6.5% instead of the control's "
           "5%, the holdout at 4%), so you can see it recover the truth inside its intervals."),
    ("code", "%matplotlib inline\nimport os, tempfile\nfrom pathlib import Path\n\n"
             "from IPython.display import Markdown\n\n"
             "from events.exposures import record_configuration, write_exposures\n"
             "from experiments.readout import read_out\n"
             "from experiments.simulated import simulate_experiment\n"
             "from experiments.tracking import figure, log_readout\n\n"
             "ROOT = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
             "USERS = int(os.environ.get('NOTEBOOK_EXPERIMENT_USERS', 40000))\n"
             "shares = {'control': 0.5, 'treatment': 0.4, 'holdout': 0.1}\n"
             "sim = simulate_experiment('demo-experiment', shares, {'control': 0.05, 'treatment': 0.065, 'holdout': 0.04},\n"
             "                          n_users=USERS, window_days=7, seed=11)\n"
             "log_dir = Path(tempfile.mkdtemp()) / 'log'\n"
             "write_exposures(sim.exposures, log_dir)  # as the server writes them: JSON lines\n"
             "record_configuration(log_dir, 'demo-experiment', {'control': 'control', 'arms': [{'name': a, 'share': s} for a, s in shares.items()]})\n"
             "sim.exposures.head()"),
    ("md", "Each line of the log is one exposure: when, which experiment and arm, the shopper, the model version "
           "that answered and the request id. A shopper counts from their **first** exposure, in that arm, and "
           "converts if they purchase within the window after it (7 days here)."),
    ("code", "readout = read_out(log_dir, sim.events, window_days=7)\nMarkdown(readout.markdown())"),
    ("code", "figure(readout)"),
    ("md", "The simulator's truth against the readout's 95% intervals:"),
    ("code", "t = readout.table\n"
             "effect = sim.truth.loc['treatment', 'conversion'] - sim.truth.loc['control', 'conversion']\n"
             "inside = t.loc['treatment', 'conversion_diff_ci_low'] <= effect <= t.loc['treatment', 'conversion_diff_ci_high']\n"
             "print(f\"true effect {effect:+.2%}, estimated {t.loc['treatment', 'conversion_diff']:+.2%} \"\n"
             "      f\"[{t.loc['treatment', 'conversion_diff_ci_low']:+.2%}, {t.loc['treatment', 'conversion_diff_ci_high']:+.2%}]\")\n"
             "print(f'true effect inside the interval: {inside}')\n"
             "t[['conversion', 'conversion_ci_low', 'conversion_ci_high']].assign(true_conversion=sim.truth['conversion'])"),
    ("md", "The readout as an MLflow run (experiment `session-signals-readouts`: table, plot, per-arm metrics), as "
           "`signals experiment report` logs it:"),
    ("code", "default_store = 'sqlite:///' + str(ROOT / 'mlruns' / 'mlflow.db')\n"
             "run_id = log_readout(readout, {'log': str(log_dir), 'events': 'simulated'}, os.environ.get('MLFLOW_TRACKING_URI', default_store))\n"
             "print('logged run', run_id)"),
]

def write(cells: list[tuple[str, str]], name: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    write(EXPLORE_EVENTS, "01-explore-events.ipynb")
    write(COMPARE_RUNS, "02-compare-runs.ipynb")
    write(EXPERIMENT_READOUT, "03-experiment-readout.ipynb")
