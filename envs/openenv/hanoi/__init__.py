"""The shipped OpenEnv server of ``agentgym/OpenEnv-v0``: Tower of Hanoi.

* :mod:`.puzzle` -- rules, levels and an optimal solver (no ``openenv`` import);
* :mod:`.server` -- the OpenEnv environment and its FastAPI app
  (``python -m agentgym.envs.openenv.hanoi.server --port 8000``);
* :mod:`.generate` -- writes the task file.
"""
