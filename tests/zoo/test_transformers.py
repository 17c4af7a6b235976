"""Hugging Face transformers 5.x from tiny configs, and torch's own TransformerEncoder.

Each test writes out the model's full symmetry from its config and requires exactly those groups.
"""

from __future__ import annotations

import pytest
import torch
import transformers as T

from .zoo_check import verify

V, D, L, H, FF = 100, 32, 2, 4, 64
HD = D // H
IDS = torch.randint(0, V, (2, 7), generator=torch.Generator().manual_seed(0))
NO_CACHE = {"use_cache": False}


def sizes(spec):
    return sorted(g.size for g in spec.groups.values())


def decoder_symmetry(kv_heads):
    """Residual; per layer: MLP hidden, kv heads, query heads per kv head (if > 1), v head_dim.
    q/k head_dim is pinned by RoPE."""
    per_layer = [FF, kv_heads, HD] + ([H // kv_heads] if H // kv_heads > 1 else [])
    return sorted([D] + per_layer * L)


def build_gpt2():
    return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=V, n_embd=D, n_layer=L, n_head=H, n_positions=32))


def decoder(cls, cfg_cls, kv_heads=2, **extra):
    cfg = cfg_cls(vocab_size=V, hidden_size=D, num_hidden_layers=L, num_attention_heads=H,
                  num_key_value_heads=kv_heads, intermediate_size=FF, max_position_embeddings=32, **extra)
    return cls(cfg)


def test_gpt2():
    """Conv1D ([in, out] weights), fused c_attn split: residual (tied wte/lm_head), heads, q/k and v head_dims, MLP."""
    model = build_gpt2()
    spec = verify(model, (IDS,), NO_CACHE)
    assert sizes(spec) == sorted([D] + [FF * 2, H, HD, HD] * L)  # GPT-2's MLP is 4 * n_embd = 128
    tied = [g for g in spec.groups.values() if ("transformer.wte.weight", 1) in g.members]
    assert tied and ("lm_head.weight", 1) in tied[0].members


@pytest.mark.parametrize("name,cls,cfg", [
    ("llama", T.LlamaForCausalLM, T.LlamaConfig),
    ("mistral", T.MistralForCausalLM, T.MistralConfig),
    ("qwen2", T.Qwen2ForCausalLM, T.Qwen2Config),
])
def test_gqa_rope_decoders(name, cls, cfg):
    """GQA (4 query heads, 2 kv heads) with RoPE: kv heads and query-heads-per-kv-head are two atoms."""
    model = decoder(cls, cfg, kv_heads=2)
    spec = verify(model, (IDS,), NO_CACHE)
    assert sizes(spec) == decoder_symmetry(kv_heads=2)


def test_llama_without_gqa():
    model = decoder(T.LlamaForCausalLM, T.LlamaConfig, kv_heads=H)
    spec = verify(model, (IDS,), NO_CACHE)
    assert sizes(spec) == decoder_symmetry(kv_heads=H)


def test_bert_classifier():
    cfg = T.BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L, num_attention_heads=H,
                       intermediate_size=FF, max_position_embeddings=32, num_labels=3)
    spec = verify(T.BertForSequenceClassification(cfg), (IDS,))
    # residual, pooler hidden; per layer heads, q/k head_dim, v head_dim, MLP hidden
    assert sizes(spec) == sorted([D, D] + [H, HD, HD, FF] * L)


def test_bert_model_outputs_pin_the_residual():
    cfg = T.BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L, num_attention_heads=H,
                       intermediate_size=FF, max_position_embeddings=32)
    spec = verify(T.BertModel(cfg), (IDS,), allow_pinned_outputs=("output.dense", "pooler"))
    assert sizes(spec) == sorted([H, HD, HD, FF] * L)


def test_t5():
    """T5: relative attention bias shared by a stack's layers ties their heads; the zero bias shared by
    the cross-attention layers is constant along heads and ties nothing; RMS norms written out.
    The output includes encoder_last_hidden_state, which pins the (shared) residual stream."""
    cfg = T.T5Config(vocab_size=V, d_model=D, d_kv=HD, d_ff=FF, num_layers=L, num_heads=H)
    model = T.T5ForConditionalGeneration(cfg)
    spec = verify(model, (IDS,), {"decoder_input_ids": IDS, "use_cache": False})
    enc = [H] + [HD, HD, FF] * L             # one head atom for the encoder stack (shared bias)
    dec_self = [H] + [HD, HD] * L            # one for decoder self-attention
    dec_cross = [H, HD, HD, FF] * L          # each cross-attention layer has its own heads
    assert sizes(spec) == sorted(enc + dec_self + dec_cross)


def test_vit_classifier():
    cfg = T.ViTConfig(hidden_size=D, num_hidden_layers=L, num_attention_heads=H, intermediate_size=FF,
                      image_size=32, patch_size=8, num_labels=5)
    spec = verify(T.ViTForImageClassification(cfg), (torch.randn(2, 3, 32, 32),))
    assert sizes(spec) == sorted([D] + [H, HD, HD, FF] * L)


def test_torch_transformer_encoder():
    """nn.MultiheadAttention's fused in_proj_weight, inside nn.TransformerEncoder, plus a head."""
    layer = torch.nn.TransformerEncoderLayer(D, H, FF, batch_first=True, dropout=0.0)
    model = torch.nn.Sequential(torch.nn.Linear(5, D), torch.nn.TransformerEncoder(layer, L), torch.nn.Linear(D, 3))
    spec = verify(model, (torch.randn(2, 7, 5),))
    assert sizes(spec) == sorted([D] + [H, HD, HD, FF] * L)
