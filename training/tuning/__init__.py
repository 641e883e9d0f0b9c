"""Hyper-parameter tuning with Optuna: a typed TuneRunConfig, trials that reuse train(), pruning at each
validation epoch, every trial a nested MLflow run, workers sharing one study through an RDB storage,
and a retrain of the best config that is registered by the usual champion rule.

Modules: config (TuneRunConfig), storage (RDB storage, heartbeats, study), trials (MLflow runs),
objective (one trial), report (progress lines, table, plots), runner (`tune`, the worker loop).
"""
