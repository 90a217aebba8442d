"""FSDP for models too large to copy on every process, and full state dicts for any model.

`shard` applies PyTorch's FSDP2 (`fully_shard`) to each transformer block and then to the whole
model: every process then holds 1/world of the weights, gradients, Adam moments and EMA, and a
block's weights are gathered only while it runs. The same code runs over NCCL on GPUs and over gloo
on CPU, which is how the tests exercise it. Weights are gathered in float32 and the model's own
bf16 autocast does the mixed precision on GPU, exactly as in the unsharded (DDP) path.

The state-dict helpers use `torch.distributed.checkpoint.state_dict`, which gives the same
canonical, unsharded layout for a plain module, a DDP replica or an FSDP-sharded model, so a
checkpoint written under FSDP resumes under DDP or on one CPU, and the other way round.
Every function here is a collective under FSDP: call it on every process.
"""
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_optimizer_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor


def shard(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Shard `model` (which has a `blocks` list) in place over all processes; returns it."""
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor on every process (an all-gather when `t` is a shard)."""
    return t.full_tensor() if isinstance(t, DTensor) else t


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`full` cut to the layout of `like`: this process's shard when `like` is sharded."""
    full = full.to(like.device, like.dtype)
    return distribute_tensor(full, like.device_mesh, like.placements) if isinstance(like, DTensor) else full.clone()


_SAVE = StateDictOptions(full_state_dict=True, cpu_offload=True)  # whole tensors, on the main process's CPU


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    """(model, optimizer) state dicts with whole tensors keyed by parameter name, on the main
    process (other processes of a sharded model get empty dicts)."""
    return get_model_state_dict(model, options=_SAVE), get_optimizer_state_dict(model, optimizer, options=_SAVE)


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict):
    """Load a `full_state` optimizer dict into an optimizer over `model`'s (possibly sharded) parameters."""
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
