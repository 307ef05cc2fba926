"""Inference: ingestion, preprocessing, the saved-model format and batch prediction.

Never imports ``training``: a deployed model needs only this package and ``labels``.
"""
