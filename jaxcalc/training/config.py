"""The settings of a training run (`Config`) and each data set's recipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxcalc import augment, mlp
from jaxcalc.data import DATASETS
from jaxcalc.validation import (
    InputError,
    check_choice,
    check_in_range,
    check_nonnegative_finite,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
)

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
GRADS = ("manual", "autodiff")
MAX_STEPS = 2**31 - 1  # updates of a run: the optimisers count them in int32
FLOAT32_MAX = float(np.finfo(np.float32).max)
SEEDS = 2**32  # jax.random.PRNGKey keeps a seed's low 32 bits: 2**32 would repeat seed 0
KERNELS = ("xla", "fused")  # the XLA step, or the Pallas kernels of `jaxcalc.fused` (GPU)


@dataclass(frozen=True)
class Config:
    """Every setting of a training run. The defaults are the MNIST recipe.

    `weight_decay` is decoupled for adamw and added to the gradient (L2, as PyTorch's
    `weight_decay`) for the other optimisers. `ema` is the decay of an exponential moving
    average of the weights used for evaluation (0: off). `train_limit` trains on the first
    examples of the training split only (quick runs, tests). `kernel`: the step as XLA
    compiles it (the reference), or the Pallas kernels of `jaxcalc.fused` (a GPU).
    """

    dataset: str = "mnist"
    hidden: int = 1024
    activation: str = "relu"
    optimizer: str = "adamw"
    lr: float = 3e-3
    schedule: str = "warmup_cosine"
    weight_decay: float = 1e-4
    epochs: int = 20
    batch_size: int = 256
    seed: int = 0
    grad: str = "manual"
    kernel: str = "xla"
    dropout: float = 0.0
    label_smoothing: float = 0.1
    augment: str = "affine"
    ema: float = 0.998
    deskew: bool = True
    val_size: int = 5000
    val_fold: int = 0
    train_limit: int | None = None

    def check(self) -> Config:
        """Raise `InputError` for any nonsense setting; return self."""
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("activation", self.activation, mlp.HIDDEN_ACTIVATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("grad", self.grad, GRADS)
        check_choice("kernel", self.kernel, KERNELS)
        check_choice("augment", self.augment, augment.AUGMENTATIONS)
        for name in ("lr", "weight_decay"):  # computed in float32
            if check_nonnegative_finite(name, getattr(self, name)) > FLOAT32_MAX:
                raise InputError(f"{name} must be at most {FLOAT32_MAX:.4g}, the largest float32")
        check_positive_finite("lr", self.lr)
        if self.lr * self.weight_decay >= 1:
            raise InputError(
                f"weight_decay x lr must be below 1 (each step shrinks the weights by that "
                f"fraction), got {self.weight_decay:g} x {self.lr:g}"
            )
        for name in ("hidden", "epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if self.epochs >= MAX_STEPS:
            raise InputError("epochs must be below 2**31 (the step count is int32)")
        for name in ("seed", "val_size", "val_fold"):
            check_nonnegative_int(name, getattr(self, name))
        if self.seed >= SEEDS:
            raise InputError(f"seed must be below 2**32 = {SEEDS}, got {self.seed}")
        if self.train_limit is not None:
            check_positive_int("train_limit", self.train_limit)
        for name in ("dropout", "label_smoothing", "ema"):
            check_in_range(name, getattr(self, name), 0, 1)
        if not isinstance(self.deskew, bool):
            raise InputError(f"deskew must be True or False, got {self.deskew!r}")
        return self


#: Per-data-set defaults that differ from `Config`'s (the MNIST recipe).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {},
    "fashion-mnist": {"augment": "none", "dropout": 0.2, "deskew": False, "lr": 2e-3},
}


def default_config(dataset: str = "mnist", **overrides: Any) -> Config:
    """The recipe for `dataset` with `overrides` (None values are ignored)."""
    check_choice("dataset", dataset, DATASETS)
    fields = {**DATASET_DEFAULTS[dataset], **{k: v for k, v in overrides.items() if v is not None}}
    return Config(dataset=dataset, **fields).check()
