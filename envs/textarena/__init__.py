"""``agentgym/TextArena-v0`` and ``agentgym/TextArenaSelfPlay-v0``: TextArena's games.

* :class:`TextArenaEnv` -- the environment (``env.py``), against an opponent or in
  self-play;
* :mod:`.games` -- the games played, with levels, rule bots and experts.

Needs the ``textarena`` extra (``pip install 'agentgym[textarena]'``).
"""

from agentgym.envs.textarena.env import TextArenaEnv, agent_id
from agentgym.envs.textarena.games import GAMES, Game, Level

__all__ = ["GAMES", "Game", "Level", "TextArenaEnv", "agent_id"]
