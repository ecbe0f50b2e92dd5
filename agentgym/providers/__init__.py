"""Input providers: estimator inputs computed with a model in the loop (see
:mod:`agentgym.providers.base`).

Built in (registered on import):

* ``arena`` (:mod:`.judged`) -- ArenaRL's seeded single-elimination tournament ->
  ``arena_score``;
* ``turn_judge`` (:mod:`.judged`) -- MAPO's per-turn judge scores -> ``judge_score``;
* ``gold_belief`` (:mod:`.info_gain`) -- IGPO's belief in the gold answer per turn ->
  ``info_gain``, ``gold_belief``;
* ``spo_tracker`` (:mod:`.spo`) -- SPO's per-task Beta value tracker -> ``spo_baseline``
  (and the ``spo`` task sampler);
* ``critic`` (:mod:`.critic`) -- a value model for ``gae`` -> ``value``;
* ``hiper_critic`` (:mod:`.hiper`) -- HiPER's two-head critic -> ``value_low``,
  ``value_high``, ``switch`` (and A^H on subgoal tokens).
"""

from agentgym.providers.base import (
    InputProvider,
    ProviderContext,
    build_providers,
    get_input_provider,
    list_input_providers,
    provider_for_input,
    provider_params,
    providers_for,
    register_input_provider,
    validate_providers,
)

__all__ = [
    "InputProvider",
    "ProviderContext",
    "build_providers",
    "get_input_provider",
    "list_input_providers",
    "provider_for_input",
    "provider_params",
    "providers_for",
    "register_input_provider",
    "validate_providers",
]

# The built-in providers register on import, after every name they use is defined.
from agentgym.providers import critic, hiper, info_gain, judged, spo  # noqa: F401
