"""Data, labels, Lightning training, baselines, evaluation, MLflow tracking and the `signals` CLI."""
