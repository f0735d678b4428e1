"""A small transformer and its DDP / FSDP2 / tensor-parallel / FSDP+TP wrappings, shared by the
multi-process job (tests/dist_job.py) and the single-process reference in tests/test_distributed.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DIM, HEADS, HIDDEN, VOCAB, LAYERS = 16, 4, 64, 32, 2
BATCH, SEQ = 2, 8


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(DIM, DIM) for _ in range(3))
        self.o = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        # heads from the local width (-1): under tensor parallelism each rank holds HEADS / world of them
        q, k, v = (p(x).view(b, s, -1, DIM // HEADS).transpose(1, 2) for p in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(a.transpose(1, 2).reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(DIM, HIDDEN), nn.Linear(HIDDEN, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = nn.LayerNorm(DIM), Attention(), nn.LayerNorm(DIM), MLP()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def build() -> tuple[TinyLM, torch.Tensor]:
    """The model and its input, identical in every process (fixed seed)."""
    torch.manual_seed(0)
    model = TinyLM()
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(1))
    return model, ids


def tp_plan() -> dict:
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel
    return {"attn.q": ColwiseParallel(), "attn.k": ColwiseParallel(), "attn.v": ColwiseParallel(),
            "attn.o": RowwiseParallel(), "mlp.up": ColwiseParallel(), "mlp.down": RowwiseParallel()}


def wrap(model: TinyLM, mode: str, world: int) -> nn.Module:
    """``model`` parallelised as ``mode``: "ddp", "fsdp", "tp" or "fsdp+tp" (2-d mesh dp=1 × tp=world)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import parallelize_module
    if mode == "ddp":
        return nn.parallel.DistributedDataParallel(model)
    if mode == "fsdp":
        mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("dp",))
        for b in model.blocks:
            fully_shard(b, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    if mode == "tp":
        mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("tp",))
        for b in model.blocks:
            parallelize_module(b, mesh, tp_plan())
        return model
    if mode == "fsdp+tp":
        mesh2 = init_device_mesh("cpu", (1, world), mesh_dim_names=("dp", "tp"))
        for b in model.blocks:
            parallelize_module(b, mesh2["tp"], tp_plan())
            fully_shard(b, mesh=mesh2["dp"])
        fully_shard(model, mesh=mesh2["dp"])
        return model
    raise ValueError(mode)
