"""Pure PyTorch: event encoding, sequence encoders, heads, losses, metrics and the saved-model bundle.

Nothing here imports Lightning, MLflow, Optuna or BentoML: training and serving both build on it.
"""
