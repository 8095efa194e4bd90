"""tfls: TensorFlow Learned Surrogates (learned surrogate losses for non-differentiable metrics)."""

__version__ = "0.1.0"
