"""The task-agnostic learned-surrogate method: embedding surrogate, its losses and the alternating tuner."""

from tfls.surrogate.losses import approximation_loss, gradient_penalty, robust_weights
from tfls.surrogate.surrogate import PairGenerator, Surrogate
from tfls.surrogate.tuner import OrdinaryTrainer, SurrogatePretrainer, SurrogateTuner

__all__ = [
    "OrdinaryTrainer",
    "PairGenerator",
    "Surrogate",
    "SurrogatePretrainer",
    "SurrogateTuner",
    "approximation_loss",
    "gradient_penalty",
    "robust_weights",
]
