"""The training configuration: ``agentgym train CONFIG.yaml key=value ...``.

Key names follow verl / verl-agent where one exists (``algorithm.adv_estimator``,
``algorithm.gamma``, ``algorithm.gigpo.step_advantage_w``, ``env.max_steps``,
``env.history_length``, ``env.rollout.n``, ``actor.clip_ratio_low``,
``actor.loss_agg_mode``, ``actor.kl_loss_type``). Every field is documented once, here.
Validation happens when the config loads, before any model is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agentgym.config.loader import OPEN_SECTIONS
from agentgym.errors import ConfigError


@dataclass
class PromptSection:
    """``env.prompt``: how observations become prompts (see :mod:`agentgym.rollout.prompts`).

    Attributes:
        style: ``window`` (each step its own sample, last K steps shown) or ``chat``
            (one growing conversation; only assistant tokens trained).
        system: the system message (``{format_instructions}`` = the parser's answer
            format); ``null`` keeps the default; empty string: no system message.
        window_template, chat_first_template, chat_next_template: user-message format
            strings; ``null`` keeps the defaults.
        observation_role: chat style role of environment messages: ``user`` or ``tool``.
        show_admissible: list the env's admissible actions in prompts.
    """

    style: Literal["window", "chat"] = "window"
    system: str | None = None
    window_template: str | None = None
    chat_first_template: str | None = None
    chat_next_template: str | None = None
    observation_role: Literal["user", "tool"] = "user"
    show_admissible: bool = True


def _strategy_names() -> list[str]:
    from agentgym.plugins import load_plugins
    from agentgym.rollout.strategies import list_strategies

    load_plugins()
    return list_strategies()


@dataclass
class RolloutSection:
    """``env.rollout``: how groups are played.

    Attributes:
        n: rollouts per task (the group size).
        executor: where envs run: ``inline``, ``threads``, ``processes``, ``ray`` (or
            registered; see docs/scale_out.md).
        executor_options: the executor's own keyword arguments, e.g.
            ``{envs_per_actor: 4, address: auto}`` for ``ray`` or ``{num_workers: 8}``
            for ``processes``; checked against the executor when the config loads.
        max_concurrent: at most this many episodes at once (env pool size).
        timeout: seconds one env reset/step may take before its episode ends as error.
        invalid_action_penalty: added to the reward of an unparsable or rejected action.
        max_prompt_tokens: an episode whose prompt passes this ends as truncated.
        strategy: how the training rollouts of a task are laid out (a registered rollout
            strategy, :mod:`agentgym.rollout.strategies`): ``group`` (``n`` independent
            episodes), ``tree`` (TreePO trees of ``n`` leaves), ``local`` (LoGo-GRPO
            re-rolls after ``n`` global episodes). A name, or a mapping with the settings
            (``{name: tree, roots: 2}``). Evaluation always plays independent episodes.
        <strategy name>: that strategy's settings, e.g. ``env.rollout.tree.roots``; only
            the chosen strategy's section is used, every one is checked.
        mode: ``sync`` (lock step: generate for every live episode, then step every env)
            or ``async`` (each episode runs its own loop; an env steps as soon as its
            episode's generation returns while other episodes keep generating; see
            :mod:`agentgym.rollout.async_engine`). ``async`` plays ``group`` rollouts only.
    """

    n: int = 8
    executor: str = "inline"
    executor_options: dict[str, Any] = field(default_factory=dict)
    max_concurrent: int = 256
    timeout: float = 60.0
    invalid_action_penalty: float = -0.1
    max_prompt_tokens: int = 2048
    strategy: str | dict[str, Any] = "group"
    strategies: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={OPEN_SECTIONS: _strategy_names}
    )
    mode: Literal["sync", "async"] = "sync"

    def __getattr__(self, name: str) -> dict[str, Any]:
        # ``cfg.env.rollout.tree`` reads that strategy's section (empty when unset)
        if name.startswith("_") or name == "strategies":
            raise AttributeError(name)
        if name in _strategy_names():
            return self.strategies.get(name, {})
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def strategy_settings(self) -> dict[str, Any]:
        """The chosen strategy's settings (its section)."""
        return dict(self.strategies.get(str(self.strategy), {}))

    def __post_init__(self) -> None:
        from agentgym.rollout.strategies import check_strategy_section

        _check_executor_options(self.executor, self.executor_options)
        if isinstance(self.strategy, dict):  # {name: tree, roots: 2, ...}
            settings = dict(self.strategy)
            name = settings.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(
                    f"env.rollout.strategy as a mapping needs a 'name' (e.g. {{name: tree, "
                    f"roots: 2}}), got {self.strategy!r}"
                )
            if settings and self.strategies.get(name):
                raise ConfigError(
                    f"env.rollout.strategy and env.rollout.{name} both set the settings of "
                    f"{name!r}; keep one"
                )
            self.strategy = name
            if settings:
                self.strategies = {**self.strategies, name: settings}
        check_strategy_section(self.strategy, self.strategies)
        if self.mode == "async" and self.strategy != "group":
            raise ConfigError(
                f"env.rollout.mode=async plays independent episodes only (strategy 'group'), "
                f"got strategy {self.strategy!r}; use mode=sync for branching strategies"
            )


def _check_executor_options(executor: str, options: dict[str, Any]) -> None:
    """Options must be keyword arguments of the executor (of a registered one: a name
    registered later, by a plugin, is checked when its pool is built)."""
    import inspect

    from agentgym.errors import UnknownNameError, did_you_mean
    from agentgym.rollout.executor import pool_factory

    if not options:
        return
    try:
        params = inspect.signature(pool_factory(executor)).parameters
    except UnknownNameError:
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    elsewhere = {
        "size": "env.rollout.max_concurrent",
        "timeout": "env.rollout.timeout",
        "seed": "seed",
    }
    own = [n for n in params if n not in ("self", "spec", *elsewhere)]
    for key in options:
        if key in elsewhere:
            raise ConfigError(f"env.rollout.executor_options.{key}: set {elsewhere[key]} instead")
        if key not in own:
            raise ConfigError(
                f"env.rollout.executor_options has {key!r}, which the {executor!r} executor "
                f"does not take.{did_you_mean(key, own)} Valid: {', '.join(own) or 'none'}"
            )


@dataclass
class EnvSection:
    """``env``: the environment and how the agent sees it.

    Attributes:
        id: registered id (``FrozenLake-v0``) or ``module:Class``.
        kwargs: constructor arguments of the environment.
        max_steps: turn limit per episode; ``null`` keeps the registered default.
        history_length: window style: past (observation, action) pairs in the prompt.
        action_parser: response format (``think_action``, ``search_r1``, ``tool_call``,
            ``raw``); ``null`` uses the environment's default.
        prompt: see :class:`PromptSection`.
        rollout: see :class:`RolloutSection`.
    """

    id: str = "FrozenLake-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None
    history_length: int = 2
    action_parser: str | None = None
    prompt: PromptSection = field(default_factory=PromptSection)
    rollout: RolloutSection = field(default_factory=RolloutSection)


@dataclass
class SamplingSection:
    """Sampling settings (``policy.sampling`` for training, ``policy.val_sampling`` for
    validation/test). ``temperature: 0`` is greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 64


@dataclass
class TinyModelSection:
    """``policy.tiny``: the model built when ``policy.model: tiny`` (see
    ``agentgym model tiny``)."""

    layers: int = 2
    hidden: int = 128
    vocab_size: int = 512
    episodes: int = 200


@dataclass
class PolicySection:
    """``policy``: the model being trained and its inference backend.

    Attributes:
        model: a Hugging Face model directory, or ``tiny`` to build a tiny model for the
            environment into the run directory.
        backend: rollout backend: ``hf`` (transformers generate, shares the trainer's
            weights), ``vllm`` (an in-process engine; weights pushed into it after each
            update) or ``vllm_server`` (N vLLM servers, started here or given by URL in
            ``backend_options.servers``; weights pushed over HTTP after each update).
        device: ``cpu``, ``cuda`` or ``auto``.
        dtype: parameter dtype for training (``float32``, ``bfloat16``).
        backend_options: extra constructor arguments of the backend (e.g. vLLM's
            ``gpu_memory_utilization``).
        sampling, val_sampling: see :class:`SamplingSection`.
        tiny: see :class:`TinyModelSection`.
    """

    model: str = "tiny"
    backend: Literal["hf", "vllm", "vllm_server"] = "hf"
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    backend_options: dict[str, Any] = field(default_factory=dict)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    val_sampling: SamplingSection = field(default_factory=lambda: SamplingSection(temperature=0.0))
    tiny: TinyModelSection = field(default_factory=TinyModelSection)


def _estimator_names() -> list[str]:
    from agentgym.credit import list_estimators

    return list_estimators()


def _policy_loss_names() -> list[str]:
    from agentgym.trainers.losses import list_policy_losses

    return list_policy_losses()


def _unknown(what: str, value: str, valid: list[str]) -> ConfigError:
    from agentgym.errors import did_you_mean

    return ConfigError(
        f"{what} {value!r} is not registered.{did_you_mean(value, valid)} Valid: {', '.join(valid)}"
    )


@dataclass
class AlgorithmSection:
    """``algorithm``: credit assignment.

    Attributes:
        adv_estimator: a registered estimator (``agentgym.credit.list_estimators()``,
            including those of plugins).
        gamma: discount for step returns (passed to estimators that take it).
        filter_groups: DAPO dynamic sampling: drop groups whose trajectories all got
            the same return (their advantages are all zero, so they only dilute the
            batch). The iteration then trains on fewer samples; it does not resample.
        reward_shaping: reward shapers applied in order before credit, each
            ``{name: ..., setting: value}`` (see :mod:`agentgym.shaping`).
        <estimator name>: the settings of that estimator, e.g.
            ``algorithm.gigpo.step_advantage_w``; any registered estimator (a plugin's
            too) has its section; only the chosen estimator's is used, but every
            section is checked.
        params: the chosen estimator's settings (older spelling of its own section).
        providers: input providers' settings by name, e.g. ``{igpo_gold: {prefix:
            "<answer>"}}`` (see :mod:`agentgym.providers`). The providers that fill the
            chosen estimator's inputs run without being named; naming one here also
            switches it on.
        task_sampler: which train tasks each iteration plays, ``{name: ..., setting:
            value}`` (see :mod:`agentgym.task_samplers`): ``uniform`` (default) or
            ``spo`` (SPO's prioritised sampling).
    """

    adv_estimator: str = "gigpo"
    gamma: float = 0.95
    filter_groups: bool = False
    reward_shaping: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_sampler: dict[str, Any] = field(default_factory=lambda: {"name": "uniform"})
    estimators: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={OPEN_SECTIONS: _estimator_names}
    )

    def __getattr__(self, name: str) -> dict[str, Any]:
        # ``cfg.algorithm.gigpo`` reads that estimator's section (empty when unset)
        if name.startswith("_") or name in ("estimators", "params", "providers", "task_sampler"):
            raise AttributeError(name)
        if name in _estimator_names():
            return self.estimators.get(name, {})
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def estimator_kwargs(self) -> dict[str, Any]:
        """The settings of the chosen estimator (validated; ``gamma`` filled in when the
        estimator takes it)."""
        from agentgym.credit import estimator_params, validate_params

        kwargs = {**self.params, **self.estimators.get(self.adv_estimator, {})}
        if "gamma" in estimator_params(self.adv_estimator) and "gamma" not in kwargs:
            kwargs["gamma"] = self.gamma
        validate_params(self.adv_estimator, kwargs, settings_only=True)
        return kwargs

    def __post_init__(self) -> None:
        from agentgym.credit import validate_params
        from agentgym.plugins import load_plugins

        load_plugins()
        names = _estimator_names()
        if self.adv_estimator not in names:
            raise _unknown("algorithm.adv_estimator", self.adv_estimator, names)
        for name, section in self.estimators.items():  # a typo in any section is an error
            if name != self.adv_estimator:
                try:
                    validate_params(name, section, settings_only=True)
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"algorithm.{name}: {exc}") from exc
        try:
            self.estimator_kwargs()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"algorithm.{self.adv_estimator}: {exc}") from exc
        from agentgym.shaping import validate_shaping

        try:
            validate_shaping(self.reward_shaping)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"algorithm.reward_shaping: {exc}") from exc
        _check_model_in_the_loop(self)


def _check_update_schedule(spec: dict[str, Any]) -> None:
    from agentgym.trainers.schedules import validate_update_schedule

    try:
        validate_update_schedule(spec)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"actor.update_schedule: {exc}") from exc


def _check_model_in_the_loop(section: AlgorithmSection) -> None:
    """``algorithm.providers`` and ``algorithm.task_sampler``: names and settings."""
    from agentgym.providers import validate_providers
    from agentgym.task_samplers import validate_task_sampler

    try:
        validate_providers(section.providers)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"algorithm.providers: {exc}") from exc
    try:
        validate_task_sampler(section.task_sampler)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"algorithm.task_sampler: {exc}") from exc


@dataclass
class TISSection:
    """``actor.tis``: correction for the gap between the policy that generated the
    rollouts and the trainer's old policy (see :mod:`agentgym.trainers.offpolicy`).

    Attributes:
        clip: truncated importance sampling: each response token's policy loss is
            weighted by ``min(pi_old / pi_rollout, clip)`` (``null``: no weighting; Yao et
            al. 2025 use 2). Must be >= 1.
        mask_threshold: leave out of the update every sample whose mismatch (mean k3
            estimate of KL(rollout || old) over its response tokens) is above this
            (``null``: keep every sample).
    """

    clip: float | None = None
    mask_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.clip is not None and self.clip < 1.0:
            raise ConfigError(f"actor.tis.clip must be >= 1 (or null), got {self.clip}")
        if self.mask_threshold is not None and self.mask_threshold <= 0:
            raise ConfigError(
                f"actor.tis.mask_threshold must be > 0 (or null), got {self.mask_threshold}"
            )

    @property
    def enabled(self) -> bool:
        return self.clip is not None or self.mask_threshold is not None


@dataclass
class ActorSection:
    """``actor``: the policy update.

    Attributes:
        lr, weight_decay, warmup_iterations: AdamW settings; the learning rate warms
            up linearly over ``warmup_iterations``, then stays constant.
        ppo_epochs: passes over each iteration's samples.
        mini_batch_size: samples per optimizer step (``null``: the whole iteration).
        micro_batch_size: samples per forward/backward (gradient accumulation).
        policy_loss: a registered policy loss (``ppo``: token-level ratio; ``gspo``:
            sequence-level ratio, GSPO, arXiv 2507.18071; or a plugin's).
        <policy loss name>: that loss's settings, e.g. ``actor.gspo.clip_ratio_low``
            (each loss has its own defaults: PPO 0.2/0.28 with dual clip 3.0, GSPO
            3e-4/4e-4); only the chosen loss's section is used, every one is checked.
        clip_ratio_low, clip_ratio_high, clip_ratio_c: verl's names for the chosen
            loss's clip settings; ``null`` (default) keeps the loss's own default. Setting
            one here and in the loss's section is an error. To turn PPO's dual clip off,
            set ``actor.ppo.clip_ratio_c: null``.
        loss_agg_mode: how token losses become one number (a registered aggregation,
            see :mod:`agentgym.trainers.losses`).
        loss_terms: extra loss terms by name with their settings, e.g.
            ``{llds: {coef: 0.1}}``.
        use_kl_loss, kl_loss_coef, kl_loss_type: KL to a frozen reference model as a
            loss term (verl's keys for the ``kl`` term: ``k1`` or ``k3``/``low_var_kl``).
        entropy_coeff: entropy bonus coefficient (0 = off; verl's key for the
            ``entropy`` term).
        grad_clip: max gradient norm (``null``: no clipping).
        lora_rank, lora_alpha, lora_dropout, lora_target_modules: LoRA through peft
            when ``lora_rank > 0`` (merged weights are pushed to vLLM).
        use_rollout_logprobs: use the inference engine's log-probs as the PPO "old"
            log-probs instead of recomputing them with the trainer's model.
        shared_prefix: Prefix Grouper: samples that share a prompt prefix (a task's
            window prompts, a tree's chat leaves) encode it once in every forward (one
            packed sequence with a block attention mask); the same log-probs and
            gradients, less compute (see :mod:`agentgym.trainers.prefix_grouper`).
        update_schedule: how the samples reach the update, ``{name: ..., setting: value}``
            (see :mod:`agentgym.trainers.schedules`): ``standard`` (one update over every
            sample) or ``seeupo`` (turn by turn, last turn first: SeeUPO).
        tis: importance correction between rollout and old-policy log-probs
            (``{clip: 2.0, mask_threshold: null}``, see :class:`TISSection`); needs the
            trainer's recomputed old log-probs (``use_rollout_logprobs: false``).
    """

    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_iterations: int = 0
    ppo_epochs: int = 1
    mini_batch_size: int | None = None
    micro_batch_size: int = 32
    policy_loss: str = "ppo"
    clip_ratio_low: float | None = None
    clip_ratio_high: float | None = None
    clip_ratio_c: float | None = None
    loss_agg_mode: str = "token-mean"
    loss_terms: dict[str, dict[str, Any]] = field(default_factory=dict)
    use_kl_loss: bool = False
    kl_loss_coef: float = 0.001
    kl_loss_type: Literal["k1", "k3", "low_var_kl"] = "low_var_kl"
    entropy_coeff: float = 0.0
    grad_clip: float | None = 1.0
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    use_rollout_logprobs: bool = False
    shared_prefix: bool = False
    update_schedule: dict[str, Any] = field(default_factory=lambda: {"name": "standard"})
    tis: TISSection = field(default_factory=TISSection)
    losses: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={OPEN_SECTIONS: _policy_loss_names}
    )

    def __getattr__(self, name: str) -> dict[str, Any]:
        # ``cfg.actor.gspo`` reads that loss's section (empty when unset)
        if name.startswith("_") or name == "losses":
            raise AttributeError(name)
        if name in _policy_loss_names():
            return self.losses.get(name, {})
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def loss_settings(self) -> dict[str, Any]:
        """The chosen policy loss's settings: its section plus verl's top-level clip keys."""
        from agentgym.trainers.losses import policy_loss_params, validate_policy_loss_params

        settings = dict(self.losses.get(self.policy_loss, {}))
        known = policy_loss_params(self.policy_loss)
        for key in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c"):
            value = getattr(self, key)
            if value is None:
                continue
            if key in settings:
                raise ConfigError(
                    f"actor.{key} and actor.{self.policy_loss}.{key} are both set; keep one"
                )
            if key not in known:
                raise ConfigError(
                    f"actor.{key} is set but policy loss {self.policy_loss!r} has no such "
                    f"setting (its settings: {', '.join(known) or 'none'})"
                )
            settings[key] = value
        validate_policy_loss_params(self.policy_loss, settings)
        return settings

    def terms(self) -> dict[str, dict[str, Any]]:
        """Every extra loss term with its settings (``loss_terms`` plus verl's KL and
        entropy keys)."""
        from agentgym.trainers.losses import validate_loss_term_params

        terms = {name: dict(params or {}) for name, params in self.loss_terms.items()}
        if self.use_kl_loss:
            if "kl" in terms:
                raise ConfigError("actor.use_kl_loss and actor.loss_terms.kl are both set")
            terms["kl"] = {"coef": self.kl_loss_coef, "type": self.kl_loss_type}
        if self.entropy_coeff:
            if "entropy" in terms:
                raise ConfigError("actor.entropy_coeff and actor.loss_terms.entropy are both set")
            terms["entropy"] = {"coef": self.entropy_coeff}
        for name, params in terms.items():
            validate_loss_term_params(name, params)
        return terms

    @property
    def needs_reference(self) -> bool:
        """Whether a frozen reference model is needed (the ``kl`` term)."""
        return self.use_kl_loss or "kl" in self.loss_terms

    def __post_init__(self) -> None:
        from agentgym.plugins import load_plugins
        from agentgym.trainers.losses import (
            list_loss_aggs,
            list_loss_terms,
            validate_policy_loss_params,
        )

        load_plugins()
        _check_update_schedule(self.update_schedule)
        if self.micro_batch_size < 1:
            raise ConfigError(f"actor.micro_batch_size must be >= 1, got {self.micro_batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"actor.lr must be > 0, got {self.lr}")
        if self.tis.enabled and self.use_rollout_logprobs:
            raise ConfigError(
                "actor.tis compares the rollout log-probs with the trainer's old log-probs, "
                "which actor.use_rollout_logprobs=true does not compute; set one of them off"
            )
        if self.clip_ratio_c is not None and self.clip_ratio_c <= 1.0:
            raise ConfigError(f"actor.clip_ratio_c must be > 1 (or null), got {self.clip_ratio_c}")
        losses = _policy_loss_names()
        if self.policy_loss not in losses:
            raise _unknown("actor.policy_loss", self.policy_loss, losses)
        if self.loss_agg_mode not in list_loss_aggs():
            raise _unknown("actor.loss_agg_mode", self.loss_agg_mode, list_loss_aggs())
        for name in self.loss_terms:
            if name not in list_loss_terms():
                raise _unknown("actor.loss_terms", name, list_loss_terms())
        for name, section in self.losses.items():
            try:
                validate_policy_loss_params(name, section)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"actor.{name}: {exc}") from exc
        try:
            settings = self.loss_settings()
            self.terms()
        except (ValueError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"actor: {exc}") from exc
        c = settings.get("clip_ratio_c")
        if c is not None and c <= 1.0:
            raise ConfigError(
                f"actor.{self.policy_loss}.clip_ratio_c must be > 1 (or null), got {c}"
            )


@dataclass
class SFTSection:
    """``sft``: supervised warm start on demonstrations, before RL.

    Attributes:
        enabled: run SFT before RL.
        data: ``expert`` (roll out the environment's solver on train tasks) or the path
            of a JSONL file of trajectories written by ``agentgym rollout``.
        tasks: expert episodes to collect (``data: expert``).
        only_successful: keep only successful trajectories from a JSONL file.
        epochs, lr, batch_size: optimisation settings.
        prompt_loss: weight of the language-model loss on the prompt tokens (the env's
            text: instructions, observations, tool results) next to the responses' (1).
            0 trains on responses only; a tiny model learns to copy names from its
            prompt much sooner with some (``examples/search_tools_cpu.yaml``).
    """

    enabled: bool = False
    data: str = "expert"
    tasks: int = 512
    only_successful: bool = True
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 32
    prompt_loss: float = 0.0

    def __post_init__(self) -> None:
        if self.prompt_loss < 0:
            raise ConfigError(f"sft.prompt_loss must be >= 0, got {self.prompt_loss}")


@dataclass
class TrainerSection:
    """``trainer``: the loop around everything.

    Attributes:
        total_iterations: RL iterations (each: rollout, credit, update).
        tasks_per_iteration: train tasks sampled per iteration (B; groups of
            ``env.rollout.n``).
        val_every: validate on ``val_split`` every this many iterations (0 = never).
        val_tasks, val_episodes_per_task, val_split: the validation sample (fixed for
            the whole run, so curves compare like with like).
        test_tasks: evaluate this many ``test`` tasks before RL (after SFT) and at the
            end (0 = skip).
        save_every: checkpoint every this many iterations (0 = only at the end).
        keep_checkpoints: how many recent checkpoints to keep.
        out_dir: the run directory (config, metrics, checkpoints, plots).
        loggers: metric sinks besides ``metrics.jsonl``: ``tensorboard``, ``wandb``.
        wandb_project: the wandb project (``WANDB_MODE=offline`` works without a network).
        progress: show progress bars.
        max_seconds: stop RL after this much wall time (0 = no limit); the run still
            tests and saves.
        save_rollouts: task groups of each iteration's rollouts saved with their
            advantages in ``RUN_DIR/rollouts/`` for ``agentgym view`` (0 = none).
        plots: write the PNG curves into ``RUN_DIR/plots`` at the end of the run.
        strategy: how ``torchrun`` ranks share the model: ``ddp`` (a full copy per rank,
            gradients all-reduced) or ``fsdp`` (FSDP2: parameters, gradients and optimizer
            state sharded; see ``agentgym.trainers.fsdp``). One process trains alone
            either way.
        max_staleness: k >= 1 produces the rollouts of the next iterations while the
            current update runs, with weights up to k policy versions old; samples older
            than k versions at update time are dropped (``perf/stale_dropped``). 0 (the
            default): roll out, then update, in turn. See
            :mod:`agentgym.trainers.offpolicy`.
    """

    total_iterations: int = 100
    tasks_per_iteration: int = 16
    val_every: int = 10
    val_tasks: int = 64
    val_episodes_per_task: int = 1
    val_split: Literal["train", "valid", "test"] = "valid"
    test_tasks: int = 200
    save_every: int = 10
    keep_checkpoints: int = 2
    out_dir: str = "runs/agentgym"
    loggers: list[str] = field(default_factory=list)
    wandb_project: str = "agentgym"
    progress: bool = True
    max_seconds: float = 0.0
    save_rollouts: int = 4
    plots: bool = True
    strategy: Literal["ddp", "fsdp"] = "ddp"
    max_staleness: int = 0

    def __post_init__(self) -> None:
        if self.max_staleness < 0:
            raise ConfigError(f"trainer.max_staleness must be >= 0, got {self.max_staleness}")
        if self.save_rollouts < 0:
            raise ConfigError(f"trainer.save_rollouts must be >= 0, got {self.save_rollouts}")
        unknown = set(self.loggers) - {"tensorboard", "wandb", "jsonl"}
        if unknown:
            raise ConfigError(
                f"trainer.loggers has unknown sink(s) {sorted(unknown)}; "
                "choose from 'tensorboard', 'wandb' (metrics.jsonl is always written)"
            )


@dataclass
class JudgeSection:
    """``judge``: the judge of methods that learn from one (ArenaRL, MAPO; see
    :mod:`agentgym.judges`).

    Attributes:
        model: a policy spec (``hf:DIR``, ``vllm:DIR``, ``openai:URL#model``, a model
            directory) or a rule-based ``"module:function"``; ``null``: no judge.
        system: a system message for model judges.
        max_tokens, temperature: sampling of model judges (0: greedy).
        batch_size: prompts per call of the judge.
        retries: times an answer that errors or does not parse is asked again before the
            method's default verdict stands in (counted in ``judge/failures``).
        options: keyword arguments of the judge policy's constructor.
    """

    model: str | None = None
    system: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    batch_size: int = 16
    retries: int = 2
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"judge.batch_size must be >= 1, got {self.batch_size}")
        if self.retries < 0:
            raise ConfigError(f"judge.retries must be >= 0, got {self.retries}")


@dataclass
class TrainConfig:
    """The whole training run (``examples/*.yaml``)."""

    seed: int = 0
    env: EnvSection = field(default_factory=EnvSection)
    policy: PolicySection = field(default_factory=PolicySection)
    algorithm: AlgorithmSection = field(default_factory=AlgorithmSection)
    actor: ActorSection = field(default_factory=ActorSection)
    sft: SFTSection = field(default_factory=SFTSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    judge: JudgeSection = field(default_factory=JudgeSection)

    def __post_init__(self) -> None:
        check_inputs(self)
        _check_staleness(self)


def _check_staleness(cfg: TrainConfig) -> None:
    """``trainer.max_staleness >= 1`` samples next iterations' tasks while the current
    update runs: a task sampler that reads what updates change cannot take part."""
    sampler = str(cfg.algorithm.task_sampler["name"])
    if cfg.trainer.max_staleness and sampler != "uniform":
        raise ConfigError(
            f"trainer.max_staleness={cfg.trainer.max_staleness} samples tasks ahead of the "
            f"updates, which task sampler {sampler!r} reads; use the 'uniform' sampler or "
            "trainer.max_staleness=0"
        )


def check_inputs(cfg: TrainConfig) -> None:
    """Refuse an estimator or reward shaper whose inputs the environment does not provide
    (see :mod:`agentgym.inputs`): the message names the input and the ``info`` key that
    would carry it. Runs when the config loads, before any model is built."""
    from agentgym.credit import estimator_inputs
    from agentgym.inputs import describe_input, missing_inputs
    from agentgym.shaping import required_info

    provided, wanted = _check_providers(cfg)
    wanted.update(
        {
            name: f"credit estimator {cfg.algorithm.adv_estimator!r}"
            for name in estimator_inputs(cfg.algorithm.adv_estimator)
            if name not in provided
        }
    )
    for spec in cfg.algorithm.reward_shaping:
        for key in required_info(str(spec["name"])):
            wanted.setdefault(key, f"reward shaper {spec['name']!r}")
    if not wanted:
        return
    missing = missing_inputs(list(wanted), cfg.env.id, dict(cfg.env.kwargs))
    if missing:
        name = missing[0]
        info_key = describe_input(name).info_key
        raise ConfigError(
            f"{wanted[name]} needs the input {name!r}, which environment {cfg.env.id!r} "
            f"does not provide: no step's info has the key {info_key!r}. Report it from "
            f"the environment (info[{info_key!r}], and list it in the env class's "
            "`info_keys`), or choose another estimator."
        )


def run_providers(cfg: TrainConfig) -> list[str]:
    """The input providers a run builds, in the order they run: those filling the chosen
    estimator's inputs, and those named in ``algorithm.providers``."""
    from agentgym.credit import estimator_inputs
    from agentgym.providers import providers_for

    return providers_for(
        estimator_inputs(cfg.algorithm.adv_estimator), explicit=list(cfg.algorithm.providers)
    )


def _check_providers(cfg: TrainConfig) -> tuple[set[str], dict[str, str]]:
    """(columns the run's providers fill, info keys they read -> who reads them); refuses a
    judge-using provider without ``judge.model`` and a task sampler whose provider is off."""
    from agentgym.providers import get_input_provider
    from agentgym.task_samplers import get_task_sampler

    try:
        active = run_providers(cfg)
    except ValueError as exc:
        raise ConfigError(f"algorithm.providers: {exc}") from exc
    provided: set[str] = set()
    wanted: dict[str, str] = {}
    for name in active:
        cls = get_input_provider(name)
        provided.update(cls.provides)
        for key in cls.requires_info:
            wanted.setdefault(key, f"input provider {name!r}")
        if cls.uses_judge and not cfg.judge.model:
            raise ConfigError(
                f"input provider {name!r} (for {cfg.algorithm.adv_estimator!r}) asks a judge: "
                "set judge.model to a policy spec (hf:DIR, openai:URL#model) or a rule-based "
                "'module:function' (e.g. agentgym.judges:fewer_steps)"
            )
    sampler = str(cfg.algorithm.task_sampler["name"])
    for needed in get_task_sampler(sampler).requires_providers:
        if needed not in active:
            raise ConfigError(
                f"task sampler {sampler!r} reads input provider {needed!r}, which this run does "
                f"not use: choose an estimator that needs it, or add algorithm.providers."
                f"{needed}: {{}}"
            )
    return provided, wanted
