"""What every zoo test asserts: soundness, exact recovery, and no hidden axis pinned without cause."""

from __future__ import annotations

import torch

import rebasin_fx as rfx

LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def verify(model, args, kwargs=None, init="signature", allow_unknown=(), allow_pinned_outputs=(), complete=True):
    """Derive the spec (proven by the functional check), recover a planted permutation exactly, and
    (``complete``) require every hidden output axis to stay at least partly free."""
    model = model.eval()
    spec = rfx.permutation_spec(model, args, kwargs)
    assert spec.check(model, args, kwargs, seed=1) <= 1e-6
    planted = spec.random_perms(seed=5)
    sd_a = model.state_dict()
    sd_b = rfx.permute_state_dict(sd_a, spec, planted)
    found = rfx.weight_matching(spec, sd_a, sd_b, init=init)
    back = rfx.permute_state_dict(sd_b, spec, found)
    for k, v in sd_a.items():
        assert torch.equal(back[k], v), f"{k} not recovered"
    unknown = sorted({n.op for n in spec.unknown_ops} - set(allow_unknown))
    assert not unknown, f"ops without a rule pinned axes: {unknown}"
    if complete:
        assert_hidden_axes_free(model, spec, allow_pinned_outputs)
    return spec


def assert_hidden_axes_free(model, spec, allow=()):
    """Every linear/conv output axis moves, unless the model's output pins it (the classifier) or it
    is a vocabulary axis (a language-model head tied to the embedding)."""
    by_output = {ax for reason, axes in spec.pinned
                 if reason.startswith(("model output", "embedding rows")) for ax in axes}
    for name, mod in model.named_modules():
        if not isinstance(mod, LAYERS) or getattr(mod, "weight", None) is None:
            continue
        key = f"{name}.weight" if name else "weight"
        if key not in spec.shapes or f"{key}[0]" in by_output or any(a in key for a in allow):
            continue
        lays = spec.axes.get(key)
        assert lays is not None and lays[0] is not None, f"{key}: output axis pinned ({_why(spec, key)})"


def _why(spec, key):
    return "; ".join(r for r, axes in spec.pinned if f"{key}[0]" in axes) or "no reason recorded"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
