"""HFPolicy: transformers generate, batched, token in / token out, raw log-probs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agentgym.policies import Generation, PolicyInput, SamplingParams, make_policy
from agentgym.policies.chat import render_prompt_ids
from agentgym.policies.hf import HFPolicy
from tests.policies.helpers import ANSWER, PROMPTS, max_abs_diff, teacher_forced_logprobs

TOLERANCE = 1e-5  # float32, same kernels: batched generate vs one teacher-forced forward


@pytest.fixture(scope="module")
def policy(tiny_model_dir: Path) -> HFPolicy:
    policy = make_policy(f"hf:{tiny_model_dir}", batch_size=4)
    assert isinstance(policy, HFPolicy)
    return policy


@pytest.fixture(scope="module")
def stopper(stop_model_dir: Path) -> HFPolicy:
    return HFPolicy(f"hf:{stop_model_dir}", str(stop_model_dir))


def mixed_inputs(policy: HFPolicy) -> list[PolicyInput]:
    tok = policy.tokenizer
    return [
        PolicyInput(messages=PROMPTS[0]),
        PolicyInput(prompt_ids=tok.encode("######\n#  @ #", add_special_tokens=False)),
        PolicyInput(messages=PROMPTS[1]),
        PolicyInput(prompt_ids=tok.encode("up", add_special_tokens=False)),
        PolicyInput(messages=PROMPTS[2], tools=[{"type": "function", "function": {"name": "f"}}]),
        PolicyInput(prompt_ids=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    ]


def check_logprobs(policy: HFPolicy, gens: list[Generation], tol: float = TOLERANCE) -> None:
    for g in gens:
        assert g.finish_reason in ("stop", "length"), g.error
        assert len(g.token_ids) == len(g.logprobs) > 0
        ref = teacher_forced_logprobs(policy.model, g.prompt_ids, g.token_ids)
        assert max_abs_diff(ref, g.logprobs) < tol


def test_batches_of_ids_and_messages_give_tokens_and_raw_logprobs(policy: HFPolicy) -> None:
    inputs = mixed_inputs(policy)
    gens = policy.generate(inputs, SamplingParams(temperature=1.0, max_tokens=12, seed=0))
    assert len(gens) == len(inputs)
    check_logprobs(policy, gens)
    for item, g in zip(inputs, gens, strict=True):
        expected = item.prompt_ids or render_prompt_ids(
            policy.tokenizer, item.messages, tools=item.tools
        )
        assert g.prompt_ids == expected  # token in, token out: never re-tokenised
        assert g.finish_reason == "length" and len(g.token_ids) == 12
        assert g.text == policy.tokenizer.decode(g.token_ids, skip_special_tokens=True)
    # The tools reached the template.
    assert "# Tools" in policy.tokenizer.decode(gens[4].prompt_ids)


def test_logprobs_ignore_temperature_top_k_and_top_p(policy: HFPolicy) -> None:
    inputs = mixed_inputs(policy)[:3]
    for sampling in (
        SamplingParams(temperature=0.3, max_tokens=8, seed=1),
        SamplingParams(temperature=1.7, top_k=5, top_p=0.5, max_tokens=8, seed=1),
    ):
        check_logprobs(policy, policy.generate(inputs, sampling))


def test_left_padded_batches_equal_one_prompt_at_a_time(policy: HFPolicy) -> None:
    inputs = mixed_inputs(policy)
    greedy = SamplingParams(temperature=0, max_tokens=10)
    batched = policy.generate(inputs, greedy)
    for item, g in zip(inputs, batched, strict=True):
        alone = policy.generate([item], greedy)[0]
        assert alone.token_ids == g.token_ids
        assert max_abs_diff(alone.logprobs, g.logprobs) < TOLERANCE


def test_greedy_picks_the_argmax_and_top_k_1_is_greedy(policy: HFPolicy) -> None:
    inputs = mixed_inputs(policy)[:3]
    greedy = policy.generate(inputs, SamplingParams(temperature=0, max_tokens=6))
    top1 = policy.generate(inputs, SamplingParams(temperature=1.0, top_k=1, max_tokens=6, seed=3))
    assert [g.token_ids for g in greedy] == [g.token_ids for g in top1]
    for g in greedy:
        ids = torch.tensor([g.prompt_ids + g.token_ids])
        with torch.no_grad():
            logits = policy.model(ids).logits[0, len(g.prompt_ids) - 1 : -1]
        assert logits.argmax(-1).tolist() == g.token_ids


def test_seed_repeats_a_batch_and_leaves_the_global_rng_alone(policy: HFPolicy) -> None:
    inputs = mixed_inputs(policy)
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=42)
    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    first = policy.generate(inputs, sampling)
    assert torch.equal(torch.rand(1), expected_next)
    again = policy.generate(inputs, sampling)
    other = policy.generate(inputs, SamplingParams(temperature=1.0, max_tokens=8, seed=43))
    assert [g.token_ids for g in first] == [g.token_ids for g in again]
    assert [g.token_ids for g in first] != [g.token_ids for g in other]


def test_copies_of_one_prompt_sample_different_responses(policy: HFPolicy) -> None:
    group = [PolicyInput(messages=PROMPTS[0])] * 6
    gens = policy.generate(group, SamplingParams(temperature=1.0, max_tokens=8, seed=0))
    assert len({tuple(g.token_ids) for g in gens}) > 1


def test_eos_is_kept_with_its_logprob(stopper: HFPolicy) -> None:
    inputs = [PolicyInput(messages=m) for m in PROMPTS]
    gens = stopper.generate(inputs, SamplingParams(temperature=0, max_tokens=30))
    eos = stopper.tokenizer.eos_token_id
    for g in gens:
        assert g.finish_reason == "stop" and g.text == ANSWER
        assert g.token_ids[-1] == eos and g.token_ids.count(eos) == 1
        assert len(g.logprobs) == len(g.token_ids) and g.logprobs[-1] > -1.0
    check_logprobs(stopper, gens)


def test_stop_strings_cut_the_text_and_end_the_tokens(stopper: HFPolicy) -> None:
    inputs = [PolicyInput(messages=m) for m in PROMPTS]
    gens = stopper.generate(inputs, SamplingParams(temperature=0, max_tokens=30, stop=("</",)))
    for g in gens:
        assert g.finish_reason == "stop"
        assert g.text == "<action>up"  # the stop string and what follows are cut
        decoded = stopper.tokenizer.decode(g.token_ids)
        assert "</" in decoded and "</" not in stopper.tokenizer.decode(g.token_ids[:-1])
    check_logprobs(stopper, gens)


def test_max_tokens_and_the_context_limit_give_length(tiny_model_dir: Path) -> None:
    policy = HFPolicy("hf:tiny", str(tiny_model_dir), max_model_len=40)
    near_full = PolicyInput(prompt_ids=list(range(5, 40)))  # 35 of 40 positions used
    short = PolicyInput(prompt_ids=[5, 6, 7])
    gens = policy.generate([near_full, short], SamplingParams(temperature=0, max_tokens=20))
    assert [g.finish_reason for g in gens] == ["length", "length"]
    assert len(gens[0].token_ids) == 5 and len(gens[1].token_ids) == 20
    check_logprobs(policy, gens)


def test_one_bad_prompt_fails_alone(policy: HFPolicy) -> None:
    good = PolicyInput(prompt_ids=[5, 6, 7])
    bad = [
        PolicyInput(prompt_ids=[]),
        PolicyInput(prompt_ids=[5, 10**7]),
        PolicyInput(prompt_ids=[5] * policy.max_model_len),
        PolicyInput(messages=[{"content": "a message without a role"}]),
    ]
    gens = policy.generate([good, *bad, good], SamplingParams(temperature=0, max_tokens=4))
    assert [g.finish_reason for g in gens] == ["length", *["error"] * len(bad), "length"]
    errors = [g.error for g in gens[1:-1]]
    assert "empty" in errors[0] and "outside the vocabulary" in errors[1]
    assert "context holds" in errors[2] and "render" in errors[3]
    assert gens[0].token_ids == gens[-1].token_ids


def test_a_failing_batch_is_retried_prompt_by_prompt(
    policy: HFPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = policy._generate_batch

    def fail_on_13(prompts, sampling):  # type: ignore[no-untyped-def]
        if any(13 in p for p in prompts):
            raise RuntimeError("out of memory (simulated)")
        return real(prompts, sampling)

    monkeypatch.setattr(policy, "_generate_batch", fail_on_13)
    inputs = [
        PolicyInput(prompt_ids=[5, 6]),
        PolicyInput(prompt_ids=[13]),
        PolicyInput(prompt_ids=[7]),
    ]
    gens = policy.generate(inputs, SamplingParams(temperature=0, max_tokens=3))
    assert [g.finish_reason for g in gens] == ["length", "error", "length"]
    assert "out of memory" in (gens[1].error or "")


def test_from_model_shares_the_trainers_weights(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    policy = HFPolicy.from_model(model, AutoTokenizer.from_pretrained(tiny_model_dir))
    item = [PolicyInput(prompt_ids=[5, 6, 7])]
    before = policy.generate(item, SamplingParams(temperature=0, max_tokens=4))[0]
    with torch.no_grad():  # a "training step" on the shared model
        model.model.norm.weight.mul_(3.0)
    after = policy.generate(item, SamplingParams(temperature=0, max_tokens=4))[0]
    assert max_abs_diff(before.logprobs, after.logprobs) > 1e-3
    check_logprobs(policy, [after])
    assert policy.spec.startswith("hf:") and policy.trainable


def test_load_weights_full_partial_and_unknown(tiny_model_dir: Path) -> None:
    policy = HFPolicy("hf:tiny", str(tiny_model_dir))
    item = [PolicyInput(prompt_ids=[5, 6, 7])]
    greedy = SamplingParams(temperature=0, max_tokens=4)
    before = policy.generate(item, greedy)[0]
    state = {k: v.clone() for k, v in policy.model.state_dict().items()}
    policy.load_weights({"model.norm.weight": state["model.norm.weight"] * 2})
    changed = policy.generate(item, greedy)[0]
    assert max_abs_diff(before.logprobs, changed.logprobs) > 1e-3
    policy.load_weights(state)
    assert max_abs_diff(before.logprobs, policy.generate(item, greedy)[0].logprobs) < 1e-6
    with pytest.raises(ValueError, match="names the model does not have"):
        policy.load_weights({"transformer.h.0.weight": state["model.norm.weight"]})


def test_a_model_in_train_mode_generates_without_dropout_and_stays_in_train_mode(
    tiny_model_dir: Path,
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attention_dropout=0.5)
    model.train()  # as the trainer leaves it between updates
    policy = HFPolicy.from_model(model, AutoTokenizer.from_pretrained(tiny_model_dir))
    item = [PolicyInput(prompt_ids=[5, 6, 7, 8])]
    first = policy.generate(item, SamplingParams(temperature=0, max_tokens=6))[0]
    second = policy.generate(item, SamplingParams(temperature=0, max_tokens=6))[0]
    assert model.training
    assert first.token_ids == second.token_ids and first.logprobs == second.logprobs
    model.eval()
    check_logprobs(policy, [first])


def test_a_missing_model_directory_is_named_without_going_to_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from huggingface_hub import constants

    from agentgym.errors import ConfigError

    started = time.monotonic()
    for target in ("./relative/missing", str(tmp_path / "typo"), "~/no/such/model"):
        with pytest.raises(ConfigError, match="does not exist"):
            make_policy(f"hf:{target}")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"runs/typo does not exist"):  # "runs" is a folder here
        make_policy("hf:runs/typo")
    assert time.monotonic() - started < 5
    # Could be a Hub id: named as a missing directory all the same, here where the Hub
    # is out of reach (and offline mode is on).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"relative/missing does not exist .*HF_HUB_OFFLINE"):
        make_policy("hf:relative/missing")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        make_policy(f"hf:{tmp_path / 'a_file'}")


def test_eval_with_a_missing_model_directory_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants
    from typer.testing import CliRunner

    from agentgym.cli import app

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    args = ["eval", "--env", "Sokoban-v0", "--policy", "hf:relative/missing", "--tasks", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "relative/missing does not exist" in " ".join(result.output.split())
