"""Loading the trained model: dtype, device, LoRA, and the weights pushed to inference."""

from __future__ import annotations

from typing import Any

import torch


def load_model(path: str, dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a Hugging Face directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.to(resolve_device(device)), tokenizer


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def apply_lora(model: Any, actor: Any) -> Any:
    """Wrap ``model`` with peft LoRA adapters when ``actor.lora_rank > 0``."""
    if actor.lora_rank <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=actor.lora_rank,
        lora_alpha=actor.lora_alpha,
        lora_dropout=actor.lora_dropout,
        target_modules=list(actor.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def is_lora(model: Any) -> bool:
    return hasattr(model, "peft_config")


def base_model(model: Any) -> Any:
    """The transformers model under DDP and peft wrappers."""
    model = getattr(model, "module", model)  # DDP
    return model


@torch.no_grad()
def merged_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The weights as the plain Hugging Face model would have them (LoRA merged in).

    For a peft model the adapters are merged, the state dict read with the base model's
    key names, and the adapters unmerged again, so training continues unchanged.
    """
    model = base_model(model)
    from agentgym.trainers.fsdp import full_state_dict, is_sharded

    if is_sharded(model):  # FSDP: gathered from every rank (all ranks call this)
        return full_state_dict(model)
    if not is_lora(model):
        return {k: v.detach() for k, v in model.state_dict().items()}
    model.merge_adapter()
    try:
        out = {}
        for key, value in model.state_dict().items():
            if "lora_" in key:
                continue
            name = key.removeprefix("base_model.model.").replace(".base_layer.", ".")
            out[name] = value.detach().clone()
        return out
    finally:
        model.unmerge_adapter()


def save_pretrained(
    model: Any, tokenizer: Any, path: str, state_dict: dict[str, torch.Tensor] | None = None
) -> None:
    """Save a plain Hugging Face model directory (LoRA merged), loadable by any backend.

    ``state_dict`` replaces the model's own weights (the gathered weights of an FSDP
    model, see :mod:`agentgym.trainers.fsdp`)."""
    model = base_model(model)
    if state_dict is not None:
        model.save_pretrained(path, state_dict=state_dict)
    elif is_lora(model):
        # Merge into a copy: the live model keeps its adapters for further training.
        import copy

        copy.deepcopy(model).merge_and_unload().save_pretrained(path)
    else:
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)
