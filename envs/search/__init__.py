"""``agentgym/Search-v0``: question answering with a search tool (Search-R1 compatible).

* :class:`SearchEnv` -- the environment (``env.py``);
* :mod:`.reward` -- Search-R1's answer normalisation, EM, F1 and format reward;
* :mod:`.qa` -- question loaders (Search-R1 parquet, JSONL, the shipped world);
* :mod:`.world` -- the generator of the synthetic world shipped in ``data/``;
* :mod:`.roles` -- ``agentgym/SearchRoles-v0``: the same task played by a planner, a
  searcher and an answerer (one shared model, a prompt per role).
"""

from agentgym.envs.search.env import SearchEnv, render_passages, tool_schemas
from agentgym.envs.search.qa import QARow, QASet, load_qa
from agentgym.envs.search.reward import exact_match, f1_score, normalize_answer
from agentgym.envs.search.roles import ROLE_PROMPTS, ROLES, SearchRolesEnv

__all__ = [
    "ROLES",
    "ROLE_PROMPTS",
    "QARow",
    "QASet",
    "SearchEnv",
    "SearchRolesEnv",
    "exact_match",
    "f1_score",
    "load_qa",
    "normalize_answer",
    "render_passages",
    "tool_schemas",
]
