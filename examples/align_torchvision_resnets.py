"""Align two torchvision ResNet-18s (random init here; load your own weights instead) and save B aligned.

Run: python examples/align_torchvision_resnets.py [OUT_FOLDER]
"""

import pathlib
import sys
import tempfile

import torch
import torchvision

import rebasin_fx as rfx

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
torch.manual_seed(0)
a = torchvision.models.resnet18(weights=None).eval()
b = torchvision.models.resnet18(weights=None).eval()
x = torch.randn(2, 3, 64, 64)

res = rfx.align(a, b, (x,))
print(f"{len(res.spec.groups)} groups, {res.spec.free_units} free units; objective per sweep:",
      [round(v, 1) for v in res.perms.history[res.perms.start]])
with torch.no_grad():
    assert torch.allclose(res.model(x), b(x), atol=1e-4)  # the same function as B, relabelled
path = rfx.save_model(res.model, out / "resnet18_b_aligned.safetensors", spec=res.spec, perms=res.perms)
print("wrote", path, "and", path.with_suffix(".perms.json"))
