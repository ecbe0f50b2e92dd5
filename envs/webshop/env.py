"""``agentgym/WebShop-v0``: buy the product an instruction asks for in a text web shop
(Yao et al. 2022, arXiv 2207.01206), in WebShop's own text mode.

Each task is one goal: an instruction such as "i need a long clip-in hair extension which
is natural looking, and price lower than 40.00 dollars". The agent acts as in WebShop:

``search[keywords]``
    on the search page (the first page, and after ``click[back to search]``): the
    results page 1 of the 50 best products, ten per page;
``click[button]``
    any clickable of the page, lowercased as WebShop lists them: ``back to search``,
    ``next >``, ``< prev``, a product's asin, an option value (``x-large``, ``navy``),
    ``description``, ``features``, ``reviews``, ``buy now``.

``click[buy now]`` ends the episode with WebShop's reward (:mod:`.reward`): attribute,
option, price and type match, in [0, 1]. ``success`` is a reward of 1.0 (WebShop's
success rate), ``score`` the reward. That step's ``info["reward_components"]`` splits
the reward into ``attribute``, ``option``, ``price`` and ``type`` parts that add up to it
(:meth:`.reward.RewardBreakdown.components`; for multi-reward credit such as ``gdpo``).
The turn limit (``env.max_steps``) is 15 by default.

Observations are WebShop's text pages (``observation_mode="text"``, WebShop's default
simple mode, or ``"text_rich"``; see :mod:`.shop`), instruction included.
``info["admissible_actions"]`` lists ``search[<your query>]`` on the search page and
``click[x]`` for each clickable elsewhere, as verl-agent shows WebShop's available
actions. ``info["task_type"]`` is the goal product's category (``fashion``, ``beauty``,
...), ``state_key`` the page (:meth:`.shop.Page.key`: page type, product, results
page, a hash of query and chosen options).

Unlike WebShop, which silently ignores actions it cannot perform, agentgym answers them
with feedback (``Invalid action: ...`` and the page again) and ``action_valid=False``:
unknown buttons, ``search`` away from the search page, empty or over-long queries, and
anything that is not ``search[...]`` or ``click[...]``.

Action syntax (:mod:`.actions`): by default a little looser than WebShop's (any case,
spaces around the brackets, a click's whitespace folded; the whole action must be the
command). ``strict=True`` reads actions exactly as WebShop does (``click[buy now] please``
buys; ``Search[...]`` and ``click [x]`` are not actions).

Data: the synthetic catalog shipped in ``data/`` (default), or WebShop's own files with
``data_dir=`` (see :mod:`.loader`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agentgym.env import Split, StepResult, TextEnv
from agentgym.envs.webshop.actions import ACTION_NAMES, parse_loose, parse_strict
from agentgym.envs.webshop.catalog import Catalog, load_catalog
from agentgym.envs.webshop.expert import expert_action
from agentgym.envs.webshop.loader import Goal, GoalSource
from agentgym.envs.webshop.reward import RewardBreakdown, webshop_reward
from agentgym.envs.webshop.shop import (
    SEARCH_PAGE,
    ObservationMode,
    Page,
    Shop,
    render,
)
from agentgym.errors import ConfigError, did_you_mean

#: How the search action appears in ``admissible_actions`` (verl-agent's placeholder).
SEARCH_PLACEHOLDER = "search[<your query>]"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WORD = re.compile(r"[a-z0-9]+")
#: What a restore hands to ``_load_task`` (loading a task here draws nothing at random).
_NO_RANDOMNESS = np.random.default_rng(0)
_MODES: tuple[str, ...] = ("text", "text_rich")


def normalize_query(raw: str) -> str:
    """WebShop's query handling: lowercased, split on spaces and joined again (control
    characters become spaces)."""
    return " ".join(_CONTROL.sub(" ", raw).lower().split())


class WebShopEnv(TextEnv):
    """WebShop as a text environment (see the module docstring).

    Args:
        data_dir: a WebShop ``data/`` folder (default: the shipped synthetic catalog).
        goals: ``"human"`` (the instructions of ``items_human_ins.json``, WebShop's
            default) or ``"synthetic"`` (one goal per product option combination).
        num_products: use only the first N products of the product file.
        split_sizes: ``(test, valid)`` goal counts for data without ``split`` fields.
        observation_mode: ``"text"`` (WebShop's simple mode) or ``"text_rich"``.
        show_attrs: offer the ``attributes`` sub-page (WebShop's ``show_attrs``).
        max_query_chars: longer search queries are invalid actions.
        strict: read actions exactly as WebShop does (:func:`.actions.parse_strict`)
            instead of agentgym's looser default (:func:`.actions.parse_loose`).
        items_file, attributes_file, human_file, reviews_file: file names inside
            ``data_dir`` (or absolute paths) when they differ from WebShop's.
    """

    #: Actions come inside ``<action>...</action>`` (verl-agent's format); the action
    #: itself is WebShop's ``search[...]`` / ``click[...]``.
    action_parser: str = "think_action"
    #: ``reward_components`` (attribute, option, price, type) comes with the purchase.
    info_keys: ClassVar[tuple[str, ...]] = ("reward_components",)
    description: ClassVar[str] = (
        "Find and buy the product an instruction describes in a text web shop "
        "(WebShop: search[...] / click[...], attribute/option/price/type reward)."
    )

    def __init__(
        self,
        data_dir: str | None = None,
        goals: GoalSource = "human",
        num_products: int | None = None,
        split_sizes: tuple[int, int] = (500, 1000),
        observation_mode: ObservationMode = "text",
        show_attrs: bool = False,
        max_query_chars: int = 500,
        strict: bool = False,
        items_file: str | None = None,
        attributes_file: str | None = None,
        human_file: str | None = None,
        reviews_file: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        if observation_mode not in _MODES:
            raise ConfigError(
                f"observation_mode={observation_mode!r} is not one of {list(_MODES)}."
                + did_you_mean(str(observation_mode), _MODES)
            )
        if goals not in ("human", "synthetic"):
            raise ConfigError(f"goals={goals!r} must be 'human' or 'synthetic'")
        if max_query_chars < 1:
            raise ConfigError(f"max_query_chars must be >= 1, got {max_query_chars}")
        self.catalog: Catalog = load_catalog(
            Path(data_dir).expanduser() if data_dir else None,
            goals=goals,
            num_products=num_products,
            split_sizes=(int(split_sizes[0]), int(split_sizes[1])),
            items_file=items_file,
            attributes_file=attributes_file,
            human_file=human_file,
            reviews_file=reviews_file,
        )
        self.shop = Shop(self.catalog, show_attrs=show_attrs)
        self.observation_mode: ObservationMode = observation_mode
        self.max_query_chars = int(max_query_chars)
        self.strict = bool(strict)
        # episode state
        self._goal: Goal | None = None
        self._page: Page = SEARCH_PAGE
        self._visited: set[str] = set()
        self._purchase: RewardBreakdown | None = None

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self.catalog.ids[split]

    @property
    def goal(self) -> Goal:
        """The current task's goal (target asin, attributes, options, price limit)."""
        if self._goal is None:
            raise RuntimeError("call reset() first")
        return self._goal

    @property
    def page(self) -> Page:
        """The current page (the canonical state)."""
        return self._page

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        self._goal = self.catalog.goal(task_id)
        self._page, self._visited, self._purchase = SEARCH_PAGE, set(), None
        return self._render_state()

    def _instruction(self) -> str:
        return self.goal.instruction

    def _task_type(self) -> str | None:
        return self._goal.category if self._goal else None

    # ------------------------------------------------------------ state

    def _state_key(self) -> str:
        return self._page.key()

    def canonical_state(self) -> str:
        """The page: its type, query, results page, product and chosen options."""
        return self._page.describe()

    def _snapshot_state(self) -> tuple:
        """The session: the page (immutable; it carries query, results page, product and
        options), the products visited (``text_rich`` marks them) and the purchase."""
        return self._page, frozenset(self._visited), self._purchase

    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        self._load_task(task_id, split, _NO_RANDOMNESS)  # the goal
        page, visited, purchase = state
        self._page, self._visited, self._purchase = page, set(visited), purchase

    def _render_state(self) -> str:
        reward = self._purchase.reward if self._purchase else None
        elements = self.shop.elements(self._page, self.goal.instruction, reward)
        chosen = set(self._page.option_dict.values())
        return render(elements, self.observation_mode, chosen, self._visited)

    def _admissible_actions(self) -> list[str] | None:
        if self._goal is None:
            return None
        if self._page.kind == "search":
            return [SEARCH_PLACEHOLDER]
        return [f"click[{c}]" for c in self.shop.clickables(self._page)]

    # ------------------------------------------------------------ acting

    def _invalid(self, problem: str) -> StepResult:
        return self.invalid(
            problem, observation=f"Invalid action: {problem}\n\n{self._render_state()}"
        )

    def _step(self, action: str) -> StepResult:
        parsed = parse_strict(action) if self.strict else parse_loose(action)
        if parsed is None or parsed[0] not in ACTION_NAMES:
            hint = (
                " (WebShop's syntax: the name in lower case, directly followed by [)"
                if self.strict and parsed is not None
                else ""
            )
            return self._invalid(
                f"{action[:80]!r} is not an action{hint}. Write search[keywords] on the "
                "search page or click[button] with a button of the page, e.g. click[buy now]."
            )
        verb, argument = parsed
        if verb == "search":
            return self._search(argument)
        if self.strict:  # WebShop compares the lowercased argument as it is written
            return self._click(argument.lower())
        return self._click(" ".join(_CONTROL.sub(" ", argument).lower().split()))

    def _search(self, raw: str) -> StepResult:
        if self._page.kind != "search":
            return self._invalid(
                "there is no search bar on this page; click[back to search] first."
            )
        query = normalize_query(raw)
        if not query:
            return self._invalid("the search query is empty; write search[a few keywords].")
        if len(query) > self.max_query_chars:
            return self._invalid(
                f"the search query is {len(query)} characters long; at most "
                f"{self.max_query_chars} are allowed, so search with a few keywords."
            )
        self._page = self.shop.search(query)
        return StepResult(self._render_state(), info={"query": query})

    def _click(self, name: str) -> StepResult:
        clickables = self.shop.clickables(self._page)
        if not name:
            return self._invalid("click[] names no button.")
        if self._page.kind == "search":
            return self._invalid("this page only has the search bar; write search[a few keywords].")
        target = self.shop.click(self._page, name)
        if target is None:
            shown = ", ".join(clickables[:12]) + (" ..." if len(clickables) > 12 else "")
            return self._invalid(
                f"there is no {name[:80]!r} to click on this page.{did_you_mean(name, clickables)}"
                f" Clickable: {shown}."
            )
        self._page = target
        if target.kind == "item":
            self._visited.add(target.asin)
        if target.kind != "done":
            return StepResult(self._render_state())
        product = self.catalog.products[target.asin]
        self._purchase = webshop_reward(product, self.goal, product.price, target.option_dict)
        reward = self._purchase.reward
        success = reward >= 1.0 - 1e-9
        return StepResult(
            observation=self._render_state(),
            reward=reward,
            terminated=True,
            success=success,
            score=reward,
            info={
                "purchased": target.asin,
                "reward_info": self._purchase.as_dict(),
                "reward_components": self._purchase.components(),
            },
        )

    # ------------------------------------------------------------ policies

    def _expert_action(self) -> str:
        return expert_action(self.shop, self._page, self.goal)

    def random_action(self, rng: np.random.Generator) -> str:
        """What an untrained agent tries: searches made of instruction words, random
        clicks, and now and then a malformed action."""
        u = float(rng.random())
        if u < 0.05:
            junk = ["click[", "search[]", "buy now", "click[next page]", "search for shoes"]
            return junk[int(rng.integers(len(junk)))]
        if self._page.kind == "search":
            words = _WORD.findall(self.goal.instruction.lower()) or ["shop"]
            n = int(rng.integers(1, 5))
            picked = rng.integers(len(words), size=n)
            return "search[" + " ".join(words[int(i)] for i in picked) + "]"
        clickables = self.shop.clickables(self._page) or ["back to search"]
        return f"click[{clickables[int(rng.integers(len(clickables)))]}]"

    def _extra_info(self) -> dict[str, Any]:
        return {"page": self._page.kind}
