"""Training: data loading and splits, model families, evaluation and MLflow tracking."""
