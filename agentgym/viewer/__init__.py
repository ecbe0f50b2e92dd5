"""``agentgym view``: a local web page for a training run or an evaluation.

>>> from agentgym.viewer import ViewerServer
>>> with ViewerServer("runs/quickstart", port=0) as server:   # doctest: +SKIP
...     print(server.url)

The page (``static/``: plain HTML, JavaScript and CSS, nothing fetched from elsewhere)
shows a run's curves (``metrics.jsonl``) and the task groups it sampled per iteration
(``rollouts/``, written by :func:`agentgym.trainers.rollout_log.write_rollout_sample`),
each step coloured by its advantage, with its anchor-state group (GiGPO) or history
levels (HGPO) highlighted; or an evaluation's per-task results and pass@k. See
docs/viewer.md.
"""

from agentgym.viewer.data import ViewerError, ViewSource, open_source
from agentgym.viewer.server import ViewerServer

__all__ = ["ViewSource", "ViewerError", "ViewerServer", "open_source"]
