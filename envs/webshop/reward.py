"""WebShop's reward for a purchase (Yao et al. 2022, arXiv 2207.01206, section 3.2):

.. math::

    r = r_\\text{type} \\cdot
        \\frac{|U_\\text{att} \\cap Y_\\text{att}| + |U_\\text{opt} \\cap Y_\\text{opt}|
               + \\mathbb{1}[y_\\text{price} \\le u_\\text{price}]}
              {|U_\\text{att}| + |U_\\text{opt}| + 1}

where ``U`` is the goal and ``Y`` the purchase. The terms, as WebShop's
``web_agent_site/engine/goal.py`` computes them:

attributes
    A goal attribute matches when some product attribute has ``token_set_ratio > 85``
    with it, or else when it is a substring of the lowercased title, bullet points or
    description.
options
    A goal option matches when some chosen option value has ``token_set_ratio > 85``
    with it, both first reduced to their colour word (:func:`normalize_color`, WebShop's
    102-word ``COLOR_SET``: "light pink" becomes "light" and misses a goal's "pink").
price
    1 when the price paid is at most the goal's limit (goals without a limit have a limit
    of 1,000,000, so the term is always 1).
type
    ``r_type`` is 1 when the product has the goal's search query, or shares at least two
    levels of its category path (``A › B › C``), or more than 20% of the goal title's
    type words; 0.5 otherwise; 0.1 when under 10% of the title words match, 0 when none
    does (an empty goal title counts as 20%).

Deviations from WebShop, all for lack of its heavy dependencies or to fix slips:

* title words are content words (:func:`~.text.title_words`), not the nouns
  (``NOUN``/``PROPN``) spaCy's ``en_core_web_sm`` tags, the model WebShop's reward code
  loads;
* ``token_set_ratio`` is agentgym's own implementation of thefuzz's score (thefuzz
  0.19's preprocessing, the Indel ratio; see :mod:`.text`);
* WebShop's current code passes a synthetic goal's options as ``(name, value)`` pairs
  to the option matcher (its goals from option combinations then rarely match); here
  the option values are matched, as its earlier code and the paper do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from agentgym.envs.webshop.loader import Goal, Product
from agentgym.envs.webshop.text import fuzzy_match, normalize_color, title_words


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward and its parts (WebShop's ``verbose`` reward info)."""

    reward: float
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float
    attribute_matches: int
    num_attributes: int
    option_matches: int
    num_options: int
    price_ok: bool

    @property
    def r_att(self) -> float:
        return self.attribute_matches / self.num_attributes if self.num_attributes else 0.0

    @property
    def r_option(self) -> float | None:
        return self.option_matches / self.num_options if self.num_options else None

    def components(self) -> dict[str, float]:
        """The reward as a sum of four parts (``info["reward_components"]``).

        ``attribute``, ``option`` and ``price`` are the terms of the match fraction
        (matches over ``|U_att| + |U_opt| + 1``); ``type`` is what the type factor takes
        away, ``(r_type - 1) * fraction`` (0 for the right type of product, negative
        otherwise). They add up to ``reward`` (up to rounding).
        """
        denominator = self.num_attributes + self.num_options + 1
        attribute = self.attribute_matches / denominator
        option = self.option_matches / denominator
        price = float(self.price_ok) / denominator
        return {
            "attribute": attribute,
            "option": option,
            "price": price,
            "type": (self.r_type - 1.0) * (attribute + option + price),
        }

    def as_dict(self) -> dict[str, float | int | bool | None]:
        out: dict[str, float | int | bool | None] = dict(asdict(self))
        out["r_att"], out["r_option"] = self.r_att, self.r_option
        return out


def _category_levels(path: str) -> set[str]:
    return {level.strip() for level in path.split("›")}


def type_reward(product: Product, goal: Goal) -> tuple[float, bool, bool, float]:
    """``(r_type, query_match, category_match, title_score)``."""
    query_match = product.query == goal.query
    category_match = (
        len(_category_levels(product.product_category) & _category_levels(goal.product_category))
        >= 2
    )
    desired = title_words(goal.name)
    if desired:
        title_score = len(set(title_words(product.name)) & set(desired)) / len(desired)
    else:
        title_score = 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, query_match, category_match, title_score


def attribute_matches(product: Product, goal_attributes: Iterable[str]) -> int:
    """How many goal attributes the product has (fuzzy, or as text on its page)."""
    title = product.name.lower()
    bullets = " ".join(product.bullet_points).lower()
    description = product.description.lower()
    count = 0
    for wanted in goal_attributes:
        if any(fuzzy_match(have, wanted) for have in product.attributes) or (
            wanted in title or wanted in bullets or wanted in description
        ):
            count += 1
    return count


def option_matches(chosen: Iterable[str], goal_options: Iterable[str]) -> int:
    """How many goal options some chosen option value matches (after colour reduction)."""
    picked = [normalize_color(v) for v in chosen]
    count = 0
    for wanted in goal_options:
        target = normalize_color(wanted)
        if any(fuzzy_match(p, target) for p in picked):
            count += 1
    return count


def webshop_reward(
    product: Product, goal: Goal, price: float, options: Mapping[str, str]
) -> RewardBreakdown:
    """WebShop's reward for buying ``product`` at ``price`` with ``options`` chosen
    (``{option name: value}``) when the goal is ``goal`` (see the module docstring)."""
    r_type, query_match, category_match, title_score = type_reward(product, goal)
    n_att = attribute_matches(product, goal.attributes)
    n_opt = option_matches(options.values(), goal.options)
    price_ok = price <= goal.price_upper
    total = (n_att + n_opt + int(price_ok)) / (len(goal.attributes) + len(goal.options) + 1)
    return RewardBreakdown(
        reward=total * r_type,
        r_type=r_type,
        query_match=query_match,
        category_match=category_match,
        title_score=title_score,
        attribute_matches=n_att,
        num_attributes=len(goal.attributes),
        option_matches=n_opt,
        num_options=len(goal.options),
        price_ok=price_ok,
    )
