"""timm: 34 architectures from the families people merge, pretrained=False, small inputs."""

from __future__ import annotations

import pytest
import timm
import torch

import rebasin_fx as rfx
from .zoo_check import verify

# name -> input size (64 where the model accepts it; native size otherwise)
MODELS = {
    "convnext_atto": 64, "vit_tiny_patch16_224": 224, "deit_tiny_patch16_224": 224, "mixer_s16_224": 224,
    "poolformer_s12": 64, "levit_128s": 224, "efficientnet_b0": 64, "mobilenetv3_small_050": 64,
    "regnetx_002": 64, "cspresnet50": 64, "cspdarknet53": 64, "nf_regnet_b0": 64, "eva02_tiny_patch14_224": 224,
    "xcit_nano_12_p16_224": 64, "hrnet_w18_small": 64, "dpn68": 64, "ghostnet_050": 64, "resnet18": 64,
    "mobilevit_xxs": 64, "pvt_v2_b0": 64, "repvgg_a0": 64, "rexnet_100": 64, "res2net50_14w_8s": 64,
    "edgenext_xx_small": 64, "fastvit_t8": 64, "swin_tiny_patch4_window7_224": 224, "coatnet_nano_rw_224": 224,
    "maxvit_nano_rw_256": 256, "tinynet_e": 64, "densenet121": 64, "inception_v3": 299, "convmixer_768_32": 64,
    "efficientformer_l1": 224, "nfnet_l0": 64,
}
# EfficientFormer's signature start ties on its attention-bias units; the default (both starts) recovers it.
INIT = {"efficientformer_l1": None}
# MLP-Mixer's token-mixing MLP outputs the token (position) axis, which positions pin
ALLOW_PINNED = {"mixer_s16_224": ("mlp_tokens.fc2",)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_timm_model(name):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    size = MODELS[name]
    verify(model, (torch.randn(2, 3, size, size),), init=INIT.get(name, "signature"),
           allow_pinned_outputs=ALLOW_PINNED.get(name, ()))


def test_timm_vit_full_symmetry():
    """timm's qkv reshape(B, N, 3, H, D) + unbind: q/k and v keep separate head_dim atoms."""
    depth, heads, dim = 2, 3, 192
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=depth, img_size=32, patch_size=8).eval()
    spec = rfx.permutation_spec(model, (torch.randn(1, 3, 32, 32),))
    sizes = sorted(g.size for g in spec.groups.values())
    assert sizes == sorted([dim] + [heads] * depth + [dim // heads] * 2 * depth + [4 * dim] * depth)


def test_timm_eva_rope_pins_qk_head_dim_only():
    """RoPE's cos/sin vary along the q/k head_dim: pinned; heads, v head_dim and MLP stay free."""
    model = timm.create_model("eva02_tiny_patch14_224", pretrained=False, depth=1, num_classes=10).eval()
    spec = rfx.permutation_spec(model, (torch.randn(1, 3, 224, 224),))
    sizes = sorted(g.size for g in spec.groups.values())
    # residual 192; heads 3; v head_dim 64; SwiGLU hidden 512 (gate and up share it)
    assert sizes == [3, 64, 192, 512]
