"""The model zoo at full size: spec derivation, planted weight matching, functional check.

Run: python -m benchmarks.zoo [--quick] [--json out.json]

For each model (random weights): parameters, groups, free units, share of
state_dict elements that move, spec-derivation time (tracing + analysis,
uncached), weight-matching time to recover a planted permutation (signature
start), and the functional check's relative error (float64).
"""

from __future__ import annotations

import logging
import sys
import time

import torch

import rebasin_fx as rfx
from benchmarks import common


def _tv(name, size=224, **kw):
    def make():
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kw), (torch.randn(1, 3, size, size),), None

    return make


def _timm(name, size=224):
    def make():
        import timm

        return timm.create_model(name, pretrained=False), (torch.randn(1, 3, size, size),), None

    return make


def _gpt2(n_embd=768, n_layer=12, n_head=12):
    def make():
        import transformers as T

        cfg = T.GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head)
        ids = torch.randint(0, cfg.vocab_size, (1, 64))
        return T.GPT2LMHeadModel(cfg), (ids,), {"use_cache": False}

    return make


def _llama():
    import transformers as T

    cfg = T.LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                        num_attention_heads=8, num_key_value_heads=2)
    return T.LlamaForCausalLM(cfg), (torch.randint(0, 1000, (1, 64)),), {"use_cache": False}


MODELS = {
    "torchvision resnet50": _tv("resnet50", 64),
    "torchvision vit_b_16": _tv("vit_b_16"),
    "torchvision swin_t": _tv("swin_t"),
    "torchvision convnext_tiny": _tv("convnext_tiny", 64),
    "torchvision efficientnet_b0": _tv("efficientnet_b0", 64),
    "torchvision mobilenet_v3_large": _tv("mobilenet_v3_large", 64),
    "torchvision densenet121": _tv("densenet121", 64),
    "torchvision vgg16_bn": _tv("vgg16_bn", 64),
    "timm vit_small_patch16_224": _timm("vit_small_patch16_224"),
    "timm convnext_atto": _timm("convnext_atto", 64),
    "timm eva02_tiny_patch14_224": _timm("eva02_tiny_patch14_224"),
    "HF GPT-2 small (124M)": _gpt2(),
    "HF LLaMA (GQA, 4 layers, d=256)": _llama,
}
QUICK = ["torchvision resnet50", "timm convnext_atto"]


def run(names) -> list[dict]:
    logging.disable(logging.WARNING)
    rows = []
    for name in names:
        torch.manual_seed(0)
        model, args, kwargs = MODELS[name]()
        model.eval()
        t0 = time.perf_counter()
        spec = rfx.permutation_spec(model, args, kwargs, check=False, cache=False)
        t1 = time.perf_counter()
        planted = spec.random_perms(seed=1)
        sd_a = model.state_dict()
        sd_b = rfx.permute_state_dict(sd_a, spec, planted)
        t2 = time.perf_counter()
        found = rfx.weight_matching(spec, sd_a, sd_b, init="signature")
        t3 = time.perf_counter()
        inverse = rfx.inverse(planted)
        exact = all(torch.equal(found[g], inverse[g]) for g in spec.groups)
        err = spec.check(model, args, kwargs)
        cov = spec.coverage()
        row = {"model": name, "params": sum(p.numel() for p in model.parameters()), "groups": cov["groups"],
               "free_units": cov["free_units"], "moved": cov["elements_moved"] / cov["elements"],
               "spec_s": t1 - t0, "wm_s": t3 - t2, "recovered": exact, "check_err": err}
        rows.append(row)
        print(_fmt(row), flush=True)
    return rows


HEADER = ("| model | params | groups | free units | moved | spec s | matching s | recovered | check error |\n"
          "|---|---:|---:|---:|---:|---:|---:|:---:|---:|")


def _fmt(r):
    return (f"| {r['model']} | {r['params'] / 1e6:.1f}M | {r['groups']} | {r['free_units']:,} | {100 * r['moved']:.0f}% "
            f"| {r['spec_s']:.2f} | {r['wm_s']:.2f} | {'yes' if r['recovered'] else 'NO'} | {r['check_err']:.1e} |")


def main(argv=None) -> int:
    return common.main(lambda quick: run(QUICK if quick else list(MODELS)), HEADER, argv)


if __name__ == "__main__":
    sys.exit(main())
