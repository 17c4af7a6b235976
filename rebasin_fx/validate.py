"""Checks on what users hand us, each failing with a RebasinError that says what to do."""

from __future__ import annotations

import torch

from .errors import RebasinError


def same_architecture(model_a: torch.nn.Module, model_b: torch.nn.Module) -> None:
    """Raise unless A and B have the same class and state_dict keys, shapes and dtypes."""
    if type(model_a) is not type(model_b):
        raise RebasinError(
            f"models of different architectures: model A is {type(model_a).__qualname__}, model B is "
            f"{type(model_b).__qualname__}; align two instances of one architecture"
        )
    same_state_dict_layout(model_a.state_dict(), model_b.state_dict())


def same_state_dict_layout(sd_a, sd_b, names=("A", "B")) -> None:
    for key in sd_a:
        if key not in sd_b:
            raise RebasinError(f"model {names[1]} has no parameter/buffer {key!r} that model {names[0]} has: "
                               "the models are different architectures")
    for key in sd_b:
        if key not in sd_a:
            raise RebasinError(f"model {names[1]} has parameter/buffer {key!r} that model {names[0]} lacks: "
                               "the models are different architectures")
    for key, a in sd_a.items():
        b = sd_b[key]
        if tuple(a.shape) != tuple(b.shape):
            raise RebasinError(f"parameter {key!r} differs: shape {tuple(a.shape)} in model {names[0]}, "
                               f"{tuple(b.shape)} in model {names[1]} (different widths?); both models "
                               "must have the same architecture and sizes")
        if a.dtype != b.dtype:
            raise RebasinError(f"parameter {key!r} differs: dtype {a.dtype} in model {names[0]}, {b.dtype} in "
                               f"model {names[1]}; convert both to one dtype first")


def one_device(*models: torch.nn.Module) -> torch.device:
    """The single device every tensor of every model lives on."""
    devices = set()
    for m in models:
        devices |= {t.device for t in m.state_dict().values()}
    if len(devices) > 1:
        raise RebasinError(f"models have tensors on several devices {sorted(map(str, devices))}; "
                           "move them to one device with model.to(device) first")
    return devices.pop() if devices else torch.device("cpu")


def finite_tensor(key: str, t: torch.Tensor, which: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise RebasinError(f"{key} of model {which} has non-finite values (nan/inf); "
                           "fix or retrain the model before aligning it")


def finite(model: torch.nn.Module, which: str) -> None:
    for key, t in model.state_dict().items():
        finite_tensor(key, t, which)
