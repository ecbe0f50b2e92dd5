"""The engine under agentgym: the speed-ups change no text, and the rollout engine plays
ALFWorld inline and in worker processes alike."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import (
    EnvSpec,
    PromptBuilder,
    PromptConfig,
    RolloutEngine,
    TaskRequest,
    make_pool,
)
from tests.alfworld.conftest import NUM_GAMES

pytestmark = pytest.mark.alfworld

#: Random walks over three games with TextWorld as shipped or with the speed-ups; prints
#: every observation, admissible command list and fact set as JSON.
WALK = """
import json, sys
import numpy as np
from agentgym.envs.alfworld.engine import Engine
engine = Engine(parse_caches=sys.argv[1] == "fast")
seen = []
for i, path in enumerate(sys.argv[2:]):
    rng = np.random.default_rng(i)
    for episode in range(2):  # a second episode replays a reset of a loaded game
        engine.load(path)
        seen.append([engine.reset(), engine.admissible_commands, engine.fluent_facts()])
        for _ in range(20):
            commands = engine.admissible_commands
            feedback, won = engine.step(commands[int(rng.integers(len(commands)))])
            seen.append([feedback, won, engine.admissible_commands, engine.fluent_facts()])
        seen.append(engine.plan())
print(json.dumps(seen))
"""


def test_speedups_change_no_text_no_state_and_no_plan(cache_dir: Path) -> None:
    from agentgym.envs.alfworld import ALFWorldEnv

    env = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=cache_dir)
    games = [env.game_file(t) for t in ("train-2", "valid-5", "test-1")]
    env.close()
    runs = {}
    for mode in ("shipped", "fast"):
        done = subprocess.run(
            [sys.executable, "-c", WALK, mode, *games], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        runs[mode] = json.loads(done.stdout)
    assert runs["fast"] == runs["shipped"]
    assert len(runs["fast"]) == 3 * 2 * 22


def engine(
    spec: EnvSpec, executor: str, size: int = 4, parser_name: str = "think_action", **kw
) -> RolloutEngine:
    parser = get_parser(parser_name)
    pool = make_pool(executor, spec, size, timeout=120.0, **kw)
    return RolloutEngine(
        pool,
        make_policy("expert"),
        parser,
        PromptBuilder(PromptConfig(style="window"), parser),
        SamplingParams(),
        max_steps=50,
    )


def test_rollouts_in_worker_processes_match_inline_ones(cache_dir: Path) -> None:
    spec = EnvSpec("ALFWorld-v0", {"num_games": NUM_GAMES, "cache_dir": str(cache_dir)})
    tasks = [
        TaskRequest(f"{split}-{i}", split, seed=0)
        for split, i in (("train", 5), ("valid", 2), ("test", 3))
    ]
    runs = {}
    for executor, kw in (("processes", {"num_workers": 2}), ("inline", {})):
        eng = engine(spec, executor, **kw)
        try:
            runs[executor] = eng.run(tasks, n=2)
        finally:
            eng.pool.close()
    for trajs in runs.values():
        assert len(trajs) == 6 and all(t.status == "terminated" and t.success for t in trajs)
        assert {t.task_type for t in trajs} == {
            "pick_two_obj_and_place",
            "pick_clean_then_place_in_recep",
            "pick_heat_then_place_in_recep",
        }

    def played(trajs):
        return [[(s.action, s.state_key, s.reward) for s in t.steps] for t in trajs]

    assert played(runs["processes"]) == played(runs["inline"])
    first = runs["processes"][0].steps[0]
    assert first.action.startswith("go to ") and first.action_valid


THREADS = """
import json, sys
from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import (
    EnvSpec, PromptBuilder, PromptConfig, RolloutEngine, TaskRequest, make_pool,
)
spec = EnvSpec("ALFWorld-v0", json.loads(sys.argv[1]))
parser = get_parser("think_action")
pool = make_pool("threads", spec, 4, timeout=300.0)
engine = RolloutEngine(
    pool, make_policy("expert"), parser, PromptBuilder(PromptConfig(), parser),
    SamplingParams(), max_steps=50,
)
try:
    trajs = engine.run([TaskRequest(f"train-{i}", "train", seed=0) for i in range(4)], n=2)
finally:
    pool.close()
print(json.dumps([[t.status, t.success, (t.error or "")[:200]] for t in trajs]))
"""


def test_the_threads_pool_plays_alfworld(cache_dir: Path) -> None:
    """Four threads stepping ALFWorld at once, in a fresh process (TextWorld's parse caches
    empty): its parsers keep state in module globals, so without the env's lock every
    episode failed (``FailedToken``); with it, every expert episode wins."""
    kwargs = {"num_games": NUM_GAMES, "cache_dir": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", THREADS, json.dumps(kwargs)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    episodes = json.loads(done.stdout)
    assert len(episodes) == 8
    assert all(status == "terminated" and won for status, won, _ in episodes), episodes


def test_expert_demonstrations_in_hipers_format_carry_the_planners_subgoals(
    cache_dir: Path,
) -> None:
    """Through worker processes, the expert's responses in HiPER's plan-execute format name
    the plan step (the next object interaction) and SWITCH only where it starts."""
    spec = EnvSpec("ALFWorld-v0", {"num_games": NUM_GAMES, "cache_dir": str(cache_dir)})
    eng = engine(spec, "processes", parser_name="hiper", num_workers=2)
    try:
        trajs = eng.run([TaskRequest("train-3", "train", seed=0)], n=1)
    finally:
        eng.pool.close()
    (traj,) = trajs
    assert traj.success
    responses = [s.response_text for s in traj.steps]
    # heat: take the plate, heat it, put it down -- three plan steps, seven actions
    assert responses == [
        "<switch>SWITCH</switch><subgoal>take plate 1 from cabinet 3</subgoal>"
        "<action>go to cabinet 3</action>",
        "<switch>KEEP</switch><subgoal>take plate 1 from cabinet 3</subgoal>"
        "<action>open cabinet 3</action>",
        "<switch>KEEP</switch><subgoal>take plate 1 from cabinet 3</subgoal>"
        "<action>take plate 1 from cabinet 3</action>",
        "<switch>SWITCH</switch><subgoal>heat plate 1 with microwave 1</subgoal>"
        "<action>go to microwave 1</action>",
        "<switch>KEEP</switch><subgoal>heat plate 1 with microwave 1</subgoal>"
        "<action>heat plate 1 with microwave 1</action>",
        "<switch>SWITCH</switch><subgoal>move plate 1 to countertop 1</subgoal>"
        "<action>go to countertop 1</action>",
        "<switch>KEEP</switch><subgoal>move plate 1 to countertop 1</subgoal>"
        "<action>move plate 1 to countertop 1</action>",
    ]
    assert all(s.action_valid for s in traj.steps)


def test_the_intro_lists_receptacles_in_the_engines_order_not_the_files(
    cache_dir: Path, tmp_path: Path
) -> None:
    """ALFWorld's engine, not the game file, orders the intro's receptacles: TextWorld
    (since November 2023, and ALFWorld's earlier fork since February 2021) sorts the facts
    it lists by PDDL name, and ``AlfredDemangler`` numbers each type from the end of that
    sorted list. So an original ALFWorld game and a generated one both read "a cabinet 3,
    a cabinet 2, a cabinet 1, a drawer 1, ..."; declaring the receptacles in another
    (scene) order changes nothing."""
    from agentgym.envs.alfworld import ALFWorldEnv
    from agentgym.envs.alfworld.engine import Engine

    env = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=cache_dir)
    path = env.game_file("train-0")
    env.close()
    data = json.loads(Path(path).read_text())
    engine = Engine()
    engine.load(path)
    intro = engine.reset()

    lines = data["pddl_problem"].split("\n")
    receptacles = [line for line in lines if line.endswith(" - receptacle")]
    placed = [line for line in lines if line.startswith("(receptacleAtLocation ")]
    assert len(receptacles) == len(placed) >= 3
    swap = dict(zip(receptacles, reversed(receptacles), strict=True))
    swap.update(zip(placed, reversed(placed), strict=True))
    data["pddl_problem"] = "\n".join(swap.get(line, line) for line in lines)
    reordered = tmp_path / "game.tw-pddl"
    reordered.write_text(json.dumps(data))
    engine.load(str(reordered))
    assert engine.reset() == intro
    engine.close()

    seen = intro.split("you see ", 1)[1].split(".\n", 1)[0]
    listed = [item.removeprefix("a ") for item in re.split(r",? and |, ", seen)]
    names = sorted(line.split(" - ")[0] for line in receptacles)
    types = [n.split("_bar_")[0] + ("basin" if "basin" in n else "") for n in names]
    assert [item.rsplit(" ", 1)[0] for item in listed] == types  # sorted by PDDL name
    for kind in set(types):
        numbers = [int(i.rsplit(" ", 1)[1]) for i in listed if i.rsplit(" ", 1)[0] == kind]
        assert numbers == list(range(len(numbers), 0, -1))  # counted down: 3, 2, 1
