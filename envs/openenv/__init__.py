"""``agentgym/OpenEnv-v0``: any OpenEnv environment server as an agentgym environment.

* :class:`OpenEnvEnv` -- the environment (``env.py``);
* :class:`OpenEnvSession` -- one WebSocket session with a server (``client.py``);
* :mod:`.launch` -- starting a server as a subprocess, shared within a process;
* :mod:`.hanoi` -- the shipped OpenEnv server (Tower of Hanoi) and its tasks.

Needs the ``openenv`` extra (``pip install 'agentgym[openenv]'``) for the shipped server;
connecting to a running server needs only ``websockets`` and ``jsonschema``.
"""

from agentgym.envs.openenv.client import OpenEnvConnectionError, OpenEnvReply, OpenEnvSession
from agentgym.envs.openenv.env import OpenEnvEnv, load_task_rows, text_field_of

__all__ = [
    "OpenEnvConnectionError",
    "OpenEnvEnv",
    "OpenEnvReply",
    "OpenEnvSession",
    "load_task_rows",
    "text_field_of",
]
