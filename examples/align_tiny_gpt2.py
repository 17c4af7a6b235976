"""Align two tiny GPT-2s (random init) and save B aligned as a Hugging Face folder.

Run: python examples/align_tiny_gpt2.py [OUT_FOLDER]
"""

import pathlib
import sys
import tempfile

import torch
import transformers

import rebasin_fx as rfx

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
config = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=100, n_positions=32)
torch.manual_seed(0)
a = transformers.GPT2LMHeadModel(config).eval()
b = transformers.GPT2LMHeadModel(config).eval()
ids = torch.randint(0, 100, (1, 8))

res = rfx.align(a, b, (ids,), example_kwargs={"use_cache": False})
print(res.spec)
folder = rfx.save_model(res.model, out / "gpt2_b_aligned", spec=res.spec, perms=res.perms)
back = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
with torch.no_grad():
    assert torch.allclose(back(ids, use_cache=False).logits, b(ids, use_cache=False).logits, atol=1e-4)
print("wrote", folder, "(loads with GPT2LMHeadModel.from_pretrained; permutations.json inside)")
