"""A third-party package extends agentgym with no import by the user: an estimator, a loss
and a reward shaper through ``agentgym.plugins``, and a plain Gymnasium text env (which
knows nothing of agentgym) through ``agentgym.envs``. The package is really installed
(pip, into a target folder) and every check runs in a fresh process that only has it on
its path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.core.packages import AGENTGYM, install_package, run_with

METHODS = '''
import numpy as np
import torch

from agentgym.credit import CreditBatch, register_estimator
from agentgym.shaping import RewardShaper, register_reward_shaper
from agentgym.trainers.losses import register_policy_loss


@register_estimator("best_minus_mean")
def best_minus_mean(batch: CreditBatch, *, scale: float = 1.0) -> np.ndarray:
    """A_i = scale * (R_i - mean of the group's returns), on every step of i."""
    sums = np.bincount(batch.traj_group, weights=batch.traj_return, minlength=batch.n_groups)
    counts = np.bincount(batch.traj_group, minlength=batch.n_groups)
    centred = batch.traj_return - (sums / counts)[batch.traj_group]
    return scale * centred[batch.traj]


@register_policy_loss("plain_pg")
def plain_pg(log_prob, old_log_prob, advantages, mask, agg, *, weight: float = 1.0):
    """REINFORCE with a baseline: -A * log pi (no ratio, no clip)."""
    return weight * agg(-advantages * log_prob, mask), {"plugin/pg_weight": weight}


@register_reward_shaper("count_calls")
class CountCalls(RewardShaper):
    """Adds nothing; counts the iterations it saw (state kept in checkpoints)."""

    def __init__(self, *, bonus: float = 0.0) -> None:
        self.bonus, self.seen = bonus, 0

    def shape(self, ctx):
        self.seen += 1
        return ctx.rewards + self.bonus

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]
'''

PLAIN_ENV = '''
import gymnasium
from gymnasium import spaces


class GuessNumber(gymnasium.Env):
    """Guess a number in 1..8; told 'higher' or 'lower'. Plain Gymnasium, text in/out."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = spaces.Text(max_length=200)
        self.action_space = spaces.Text(max_length=4, charset="12345678")
        self.target = 1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(1, 9))
        return "Guess a number from 1 to 8.", {}

    def step(self, action):
        guess = int(action.strip())  # garbage raises ValueError: the adapter answers it
        if guess == self.target:
            return "Correct!", 1.0, True, False, {}
        hint = "higher" if guess < self.target else "lower"
        return f"{guess} is wrong, go {hint}.", 0.0, False, False, {"hint": hint}
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_package(
        tmp_path_factory.mktemp("plugin"),
        "my-methods",
        {"my_methods/__init__.py": METHODS, "my_methods/plain.py": PLAIN_ENV},
        {
            "agentgym.plugins": {"methods": "my_methods"},
            "agentgym.envs": {"GuessNumber-v0": "my_methods.plain:GuessNumber"},
        },
    )


run = run_with


def test_plain_gymnasium_env_is_listed_and_passes_the_checker(plugin_site: Path) -> None:
    listing = run([AGENTGYM, "env", "list", "GuessNumber"], plugin_site)
    assert listing.returncode == 0, listing.stderr
    assert "GuessNumber-v0" in listing.stdout
    check = run([AGENTGYM, "env", "check", "GuessNumber-v0"], plugin_site)
    assert check.returncode == 0, check.stdout + check.stderr
    split = run(
        [
            sys.executable,
            "-c",
            "import agentgym; e = agentgym.make('GuessNumber-v0');"
            "u = e.unwrapped; print(len(u.task_ids('train')), u.task_ids('valid')[0],"
            " u.task_ids('test')[0], e.get_wrapper_attr('max_steps'));"
            "o, i = e.reset(options={'task_id': 'seed-3'}); o2, *_ , i2 = e.step('x');"
            "print(i2['action_valid'], i['state_key'] != '')",
        ],
        plugin_site,
    )
    assert split.returncode == 0, split.stderr
    assert split.stdout.split() == ["10000", "seed-10000", "seed-11000", "50", "False", "True"]


def test_plugin_estimator_loss_and_shaper_train_on_the_plain_env(
    plugin_site: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [
        AGENTGYM,
        "train",
        "examples/quickstart.yaml",
        "env.id=GuessNumber-v0",
        "env.max_steps=3",
        "env.action_parser=raw",
        "env.prompt.show_admissible=false",
        "algorithm.adv_estimator=best_minus_mean",
        "algorithm.best_minus_mean.scale=2.0",
        "actor.policy_loss=plain_pg",
        "actor.plain_pg.weight=0.5",
        "algorithm.reward_shaping=[{name: count_calls, bonus: 0.0}]",
        "policy.tiny.layers=1",
        "policy.tiny.hidden=64",
        "policy.tiny.vocab_size=300",
        "policy.tiny.episodes=10",
        "policy.sampling.max_tokens=4",
        "policy.val_sampling.max_tokens=4",
        "sft.enabled=false",
        "trainer.total_iterations=1",
        "trainer.tasks_per_iteration=2",
        "env.rollout.n=2",
        "trainer.val_every=0",
        "trainer.test_tasks=2",
        "trainer.progress=false",
        "trainer.plots=false",
        f"trainer.out_dir={out}",
    ]
    root = Path(__file__).resolve().parents[2]
    done = run(args, plugin_site, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    it = next(r for r in records if "train/success" in r)
    assert it["plugin/pg_weight"] == 0.5
    assert "shaping/count_calls/reward_delta" in it
    import torch

    state = torch.load(out / "checkpoints/latest/trainer_state.pt", weights_only=False)
    assert state["shapers"] == [{"name": "count_calls", "state": {"seen": 1}}]
    # a misspelt plugin name is refused with the closest registered one
    bad = run(
        [AGENTGYM, "train", "examples/quickstart.yaml", "algorithm.adv_estimator=best_minus_maen"],
        plugin_site,
        cwd=root,
    )
    assert bad.returncode == 2
    assert "Did you mean 'best_minus_mean'?" in bad.stderr


def test_a_broken_plugin_warns_and_agentgym_still_works(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[agentgym.plugins]\nbroken = no_such_module_xyz\n")
    done = run(
        [
            sys.executable,
            "-c",
            "import warnings; warnings.simplefilter('always');"
            "from agentgym.config import TrainConfig, load_config;"
            "print(load_config(TrainConfig, None, []).algorithm.adv_estimator)",
        ],
        site,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gigpo"
    assert "agentgym plugin 'broken'" in done.stderr and "no_such_module_xyz" in done.stderr
