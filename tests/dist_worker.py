"""Worker for the 2-process gloo test: each rank sees a shard of the batches."""

from __future__ import annotations

import torch
import torch.distributed as dist

import rebasin_fx as rfx
import models as M


def setup():
    """Two differently seeded ResNets, a spec, and 6 batches (the same in every process)."""
    torch.manual_seed(0)
    a = M.ResNet20(1, in_ch=1).eval()
    torch.manual_seed(1)
    b = M.ResNet20(1, in_ch=1).eval()
    g = torch.Generator().manual_seed(2)
    data = [torch.randn(8, 1, 12, 12, generator=g) for _ in range(6)]
    spec = rfx.permutation_spec(a, (data[0][:2],))
    return a, b, spec, data


def results(a, b, spec, data):
    perms = rfx.activation_matching(spec, a, b, data)
    aligned = rfx.apply_permutations(b, spec, perms)
    mid = rfx.interpolate([a, aligned], steps=1)[1]
    repaired = rfx.repair(a, aligned, mid, data, spec=spec)
    return {"perms": dict(perms), "repaired": repaired.state_dict()}


def worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        a, b, spec, data = setup()
        out = results(a, b, spec, data[rank::world])
        if rank == 0:
            torch.save(out, out_file)
    finally:
        dist.destroy_process_group()
