"""Train three MLPs on scikit-learn's digits, merge them with MergeMany, compare with the naive average.

Run: python examples/merge_three_mlps.py
"""

import torch

import rebasin_fx as rfx
from rebasin_fx import datasets, demo
from rebasin_fx.demo_models import mlp

train, test = datasets.digits()
models = []
for seed in (1, 2, 3):
    torch.manual_seed(seed)
    models.append(demo.train(mlp(128, depth=2, d_in=64), train, epochs=20, seed=seed))

merged = rfx.merge_many(models, (train[0][:2],)).model
naive = rfx.average(models)
for name, m in [("model 1", models[0]), ("naive average", naive), ("MergeMany", merged)]:
    loss, acc = demo.evaluate(m, test)
    print(f"{name:<14} test loss {loss:.3f}  accuracy {acc:.3f}")
