"""FSDP2 under ``torchrun`` (``trainer.strategy: fsdp``), beside DDP.

Each rank holds a shard of every parameter, gradient and optimizer state
(``torch.distributed.fsdp.fully_shard`` on every decoder layer, then on the whole model:
PyTorch's FSDP2, DTensor parameters); a forward or backward pass all-gathers a layer's
parameters just before it runs and frees them after. Rollouts, credit and the loss are
those of DDP (:mod:`agentgym.trainers.distributed`): each rank rolls out its share of the
tasks, and gradients are reduce-scattered instead of all-reduced.

What FSDP changes around the update:

* **Equal forward passes on every rank.** Every forward of the sharded model is a
  collective, so a rank that ran one more (a longer rollout, one more micro-batch) would
  wait for ever. The sharded model is therefore never used for generation, and the samples
  are padded to the same count on every rank *before* the old/reference log-probs are
  computed (:func:`agentgym.trainers.distributed.pad_samples`).
* **An unsharded copy for generation.** With the ``hf`` backend each rank generates with
  :func:`rollout_copy`, a full copy of the weights refreshed after each update from
  :func:`full_state_dict` (an all-gather, the same count on every rank);
  ``vllm``/``vllm_server`` push that full state dict into their engines instead. The
  reference model of the KL loss is an unsharded copy too (built before sharding).
* **Consolidated checkpoints.** :func:`consolidated_state` gathers the full weights and
  the optimizer state keyed by parameter name; rank 0 writes them as an ordinary
  checkpoint (a Hugging Face directory plus ``trainer_state.pt`` with
  ``optimizer_format: "fqn"``). :func:`load_sharded` puts a checkpoint back into a model
  sharded over any number of ranks -- or into a plain model -- so a run resumes under a
  different world size, from a DDP checkpoint too.

Deviations from plain FSDP recipes: parameters stay float32 (no mixed-precision policy:
the trainer's dtype is ``policy.dtype``), no CPU offload, and LoRA is refused (peft's
adapters under FSDP2 need per-module wrapping this trainer does not do). The rollout copy
costs one unsharded model per rank: FSDP here shards the optimizer state and gradients,
which dominate training memory, not the weights used for generation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from agentgym.errors import ConfigError
from agentgym.trainers.distributed import DistContext

__all__ = [
    "consolidated_state",
    "full_state_dict",
    "is_sharded",
    "load_sharded",
    "param_norm",
    "rollout_copy",
    "shard",
    "sync_rollout_copy",
]


def _dtensor_type() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without distributed support
        return None
    return DTensor


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``model``'s parameters are FSDP shards (DTensors)."""
    dtensor = _dtensor_type()
    return dtensor is not None and any(isinstance(p, dtensor) for p in model.parameters())


def shard(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """Shard ``model`` in place over all ranks with FSDP2: each decoder layer, then the
    root (embeddings, final norm, head). Returns ``model`` (now an ``FSDPModule``).

    Must run before the optimizer is built (it must hold the sharded parameters).
    """
    if hasattr(model, "peft_config"):
        raise ConfigError(
            "trainer.strategy=fsdp does not train LoRA adapters (actor.lora_rank > 0); "
            "use trainer.strategy=ddp for LoRA"
        )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = next(model.parameters()).device.type
    mesh = init_device_mesh(device, (ctx.world_size,))
    for layer in _decoder_layers(model):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of a Hugging Face causal LM (``model.model.layers`` and the
    like); none for other modules, which are then sharded as one unit."""
    inner = getattr(model, "model", None)
    for holder in (inner, getattr(model, "transformer", None)):
        for name in ("layers", "h", "blocks"):
            blocks = getattr(holder, name, None) if holder is not None else None
            if isinstance(blocks, torch.nn.ModuleList):
                return list(blocks)
    return []


@torch.no_grad()
def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on every rank, Hugging Face names (tied names each
    listed). A collective: every rank must call it, at the same point."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    return {k: v.detach() for k, v in state.items()}


def rollout_copy(model: torch.nn.Module) -> torch.nn.Module:
    """An unsharded copy of ``model`` for generation (call before :func:`shard`)."""
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


@torch.no_grad()
def sync_rollout_copy(twin: torch.nn.Module, model: torch.nn.Module) -> None:
    """Load the sharded ``model``'s current weights into its rollout copy (a collective)."""
    twin.load_state_dict(full_state_dict(model))


def consolidated_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``{"model": full state dict, "optimizer": full optimizer state keyed by parameter
    name}`` on every rank, for a checkpoint that loads under any world size. A collective."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True)
    return {
        "model": full_state_dict(model),
        "optimizer": get_optimizer_state_dict(model, optimizer, options=options),
    }


def load_sharded(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    trainable: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any],
) -> None:
    """Put full trainable weights and an optimizer state (keyed by name, or by index as
    ``optimizer.state_dict()`` writes it) into a sharded -- or plain -- model and its
    optimizer; each rank keeps its shard."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, dict(trainable), options=options)
    state = dict(optimizer_state)
    if _keyed_by_index(state):
        state = _keyed_by_name(state, model, optimizer)
    set_optimizer_state_dict(model, optimizer, state, options=options)


def _keyed_by_index(state: Mapping[str, Any]) -> bool:
    groups = state.get("param_groups") or []
    return any(isinstance(i, int) for g in groups for i in g.get("params", []))


def _keyed_by_name(
    state: Mapping[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """An index-keyed optimizer state (``optimizer.state_dict()``) keyed by parameter name:
    indices count the optimizer's parameters in order, which are the model's trainable
    parameters in ``named_parameters()`` order (how the trainer builds its optimizer)."""
    ids = {id(p): name for name, p in model.named_parameters()}
    names = [ids[id(p)] for group in optimizer.param_groups for p in group["params"]]
    return {
        "state": {names[int(i)]: value for i, value in state.get("state", {}).items()},
        "param_groups": [
            {**group, "params": [names[int(i)] for i in group["params"]]}
            for group in state.get("param_groups", [])
        ],
    }


@torch.no_grad()
def param_norm(model: torch.nn.Module) -> float:
    """The L2 norm of all parameters, the full ones when sharded (then a collective)."""
    dtensor = _dtensor_type()
    params = [
        p.full_tensor() if dtensor is not None and isinstance(p, dtensor) else p
        for p in model.parameters()
    ]
    return float(sum(p.double().pow(2).sum() for p in params) ** 0.5)
