"""``agentgym/TextArena-v0`` and ``agentgym/TextArenaSelfPlay-v0``: TextArena's two-player
text games, against a fixed opponent or with the policy in both seats.

The game itself is TextArena's (``textarena.make("<game>-train")``: its rules, its
messages, its ``[move]`` syntax, its action-formatting wrapper, its error allowance: a
second invalid move in a row loses). :mod:`.games` adds what agentgym needs: levels
(starting positions, split by content so held-out positions never appear in training),
legal moves, rule bots and experts.

``mode="opponent"`` (``TextArena-v0``)
    The agent plays the side to move after the level's opening; the other seat is
    ``opponent``: ``"rule"`` (the game's rule bot), ``"random"`` (a random legal move),
    ``"expert"``, or any agentgym policy spec (``hf:DIR``, ``openai:URL#MODEL``, a
    model directory...), which answers TextArena's observation greedily. Reward at the
    end is TextArena's for the agent (+1 win, 0 draw, -1 loss); ``score`` is
    ``(reward + 1) / 2``; ``success`` is a win. Opponent randomness comes from the
    episode seed.
``mode="selfplay"`` (``TextArenaSelfPlay-v0``)
    Both seats are the policy: each observation is for the player to move, and every
    ``info`` names that player (``agent_id``: ``"player0"``/``"player1"``), so the rollout
    engine files each step under the player who made it (``Step.agent``, the ``agent``
    column that per-agent credit such as ``drmas`` groups on). The last
    step's reward is the mover's TextArena reward and ``info["agent_rewards"]`` has both
    (``{"player0": r0, "player1": r1}``). ``success`` (and ``score`` 1) means the game
    ended by its rules (win, loss or draw), not by invalid moves.

``state_key``: a short hash of the task, TextArena's ``game_state``, the player to move
and whether the game is over. A move TextArena refuses leaves the state as it was and
is reported ``action_valid=False``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from agentgym.env import SPLITS, Split, StepResult, TextEnv, split_of_level
from agentgym.envs.textarena.games import GAMES, Game, Level
from agentgym.errors import ConfigError, NoExpertError, did_you_mean

Mode = Literal["opponent", "selfplay"]
_OPPONENT_TURNS = 50  # a model opponent that keeps failing cannot loop forever


def _digest(text: str, size: int = 6) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def agent_id(player: int) -> str:
    """``0`` -> ``"player0"``."""
    return f"player{player}"


class TextArenaEnv(TextEnv):
    """A TextArena game (see the module docstring).

    Args:
        game: a game of :data:`~agentgym.envs.textarena.games.GAMES` (``Nim-v0``,
            ``TicTacToe-v0``).
        mode: ``"opponent"`` or ``"selfplay"``.
        opponent: ``"rule"``, ``"random"``, ``"expert"`` or a policy spec (opponent mode).
        opponent_max_tokens: response length of a model opponent.
    """

    description: ClassVar[str] = (
        "TextArena two-player games (Nim, Tic Tac Toe) against a rule bot or any policy."
    )

    def __init__(
        self,
        game: str = "Nim-v0",
        mode: Mode = "opponent",
        opponent: str = "rule",
        opponent_max_tokens: int = 64,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        if game not in GAMES:
            raise ConfigError(
                f"game={game!r} is not one of {sorted(GAMES)}." + did_you_mean(game, GAMES)
            )
        if mode not in ("opponent", "selfplay"):
            raise ConfigError(f"mode={mode!r} must be 'opponent' or 'selfplay'")
        import textarena  # noqa: F401 -- fail here, with the extra's name, if it is missing

        self.game: Game = GAMES[game]
        self.mode: Mode = mode
        self.opponent_spec = opponent
        self.opponent_max_tokens = int(opponent_max_tokens)
        self._opponent_policy: Any = None
        slug = game.split("-")[0].lower()
        self._levels: dict[str, Level] = {}
        self._ids: dict[str, list[str]] = {s: [] for s in SPLITS}
        for level in self.game.levels():
            task_id = f"{slug}-{level.code.replace(' ', '-')}"
            self._levels[task_id] = level
            self._ids[split_of_level(f"{game}\x1f{level.code}")].append(task_id)
        # episode state
        self._ta: Any = None
        self._seat = 0
        self._rng = np.random.default_rng(0)
        self._over = False
        self._outcome: dict[int, float] = {}
        self._by_rules = False

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self._ids[split]

    @property
    def has_expert(self) -> bool:
        """Opponent mode: where the expert wins every level; self-play: where there is one."""
        if self.game.expert is None:
            return False
        return self.mode == "selfplay" or self.game.expert_wins

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        import textarena

        level = self._levels[task_id]
        self._ta = textarena.make(f"{self.game.ta_id}-train", **level.kwargs)
        self._ta.reset(num_players=2, seed=int(rng.integers(2**31)))
        for move in level.opening:
            self._ta.step(move)
        self._rng = rng
        self._over, self._outcome, self._by_rules = False, {}, False
        self._seat = self._player()
        return self._observe()

    def _instruction(self) -> str:
        seat = "" if self.mode == "selfplay" else f" You are Player {self._seat}."
        example = (self.game.legal(self._gs(), self._player()) or ["[0]"])[0]
        return f"{self.game.rules}{seat} Answer with one move in the game's syntax, e.g. {example}."

    def _task_type(self) -> str | None:
        return self.game.ta_id

    def _admissible_actions(self) -> list[str] | None:
        return [] if self._over else self.game.legal(self._gs(), self._player())

    def _extra_info(self) -> dict[str, Any]:
        # Whose turn it is: the rollout engine files each step under the agent_id of the
        # info it acted on (Step.agent), i.e. the player who made that move.
        info: dict[str, Any] = {"agent_id": agent_id(self._player())}
        if self._over and self.mode == "selfplay":
            info["agent_rewards"] = {agent_id(p): r for p, r in self._outcome.items()}
        return info

    # ------------------------------------------------------------ state

    def _gs(self) -> dict[str, Any]:
        return self._ta.state.game_state

    def _player(self) -> int:
        return int(self._ta.state.current_player_id)

    def _position(self) -> str:
        return json.dumps(
            {"game": self._gs(), "to_move": self._player(), "over": self._over},
            sort_keys=True,
            default=str,
        )

    def _state_key(self) -> str:
        return f"{_digest(str(self._task_id), 4)}|{_digest(self._position())}"

    def canonical_state(self) -> str:
        """The task and TextArena's game state, the player to move, and whether it is over."""
        return f"{self._task_id}\n{self._position()}"

    def _observe(self) -> str:
        _, observation = self._ta.get_observation()
        return str(observation).strip()

    # ------------------------------------------------------------ acting

    def _play(self, move: str) -> bool:
        """One TextArena step; returns whether TextArena accepted the move."""
        before = self._position()
        done, _ = self._ta.step(move)
        if done:
            self._finish()
        return done or self._position() != before

    def _finish(self) -> None:
        self._over = True
        rewards, game_info = self._ta.close()
        self._outcome = {int(p): float(r) for p, r in (rewards or {}).items()}
        self._by_rules = not any(g.get("invalid_move") for g in (game_info or {}).values())

    def _step(self, action: str) -> StepResult:
        actor = self._player()
        accepted = self._play(action)
        if self.mode == "opponent":
            turns = 0
            while not self._over and self._player() != self._seat and turns < _OPPONENT_TURNS:
                self._play(self._opponent_move())
                turns += 1
        if not self._over:
            observation = self._observe()
            if not accepted:
                refused = f"Invalid move: TextArena did not accept {action[:200]!r}."
                observation = f"{refused}\n{observation}"
            return StepResult(
                observation,
                action_valid=accepted,
                success=False,
                score=0.0,
            )
        mover = actor if self.mode == "selfplay" else self._seat
        reward = self._outcome.get(mover, 0.0)
        if self.mode == "selfplay":
            success, score = self._by_rules, float(self._by_rules)
        else:
            success, score = reward > 0, (reward + 1.0) / 2.0
        result = ", ".join(f"Player {p}: {r:+g}" for p, r in sorted(self._outcome.items()))
        return StepResult(
            observation=f"The game is over ({result}).",
            reward=reward,
            terminated=True,
            action_valid=accepted,
            success=success,
            score=min(1.0, max(0.0, score)),
        )

    def _opponent_move(self) -> str:
        spec = self.opponent_spec
        gs, player = self._gs(), self._player()
        if spec == "rule":
            return self.game.bot(gs, player, self._rng)
        if spec == "random":
            moves = self.game.legal(gs, player)
            return moves[int(self._rng.integers(len(moves)))]
        if spec == "expert":
            if self.game.expert is None:
                raise ConfigError(f"{self.game.ta_id} has no expert opponent")
            return self.game.expert(gs, player)
        return self._policy_move()

    def _policy_move(self) -> str:
        from agentgym.policies import PolicyInput, SamplingParams, make_policy

        if self._opponent_policy is None:
            self._opponent_policy = make_policy(self.opponent_spec)
        observation = self._observe()
        prompt = PolicyInput(
            messages=[{"role": "user", "content": observation}],
            seed=int(self._rng.integers(2**31)),
        )
        sampling = SamplingParams(temperature=0.0, max_tokens=self.opponent_max_tokens)
        generation = self._opponent_policy.generate([prompt], sampling)[0]
        return generation.text or "(no move)"

    def _expert_action(self) -> str:
        if self.game.expert is None:
            raise NoExpertError(f"{self.game.ta_id} has no expert")
        return self.game.expert(self._gs(), self._player())

    def close(self) -> None:
        if self._opponent_policy is not None:
            self._opponent_policy.close()
            self._opponent_policy = None
        super().close()
