"""The MENTOR learner: DrQ-v2 / DrM actor-critic with an MoE actor and task-oriented perturbation.

One :meth:`MentorAgent.update` does, on a batch of n-step transitions:

1. random-shift both images (independently), encode ``obs`` with gradient and ``next_obs`` without;
2. critic: ``y = r_n + gamma^n * (lambda V(s') + (1 - lambda) min Q_target(s', a'))``, ``a' ~ pi(s')``
   clipped noise; MSE on both Q heads; the encoder learns only from this loss;
3. actor: ``-min Q(s, a ~ pi(s)) + aux`` (MoE load-balance + gate entropy), on detached features;
   the same forward pass records the actor's Linear outputs for the dormant ratio;
4. value predictor: expectile regression toward ``min Q_target(s, a_replay)``;
5. Polyak update of the critic target; every ``perturb_interval`` updates, perturb (task-oriented
   toward the top-K store, random as DrM, or none).

The dormant ratio ``beta`` computed in update ``n`` sets sigma, lambda and the perturb factor used
from update ``n + 1`` on (it starts at 1.0, as in DrM).
"""
from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import record_function

from mentor_policy import dormant as dm
from mentor_policy.augment import random_shift
from mentor_policy.checkpoint import CheckpointError, load_module_state
from mentor_policy.config import AgentConfig
from mentor_policy.networks import Critic, ValuePredictor
from mentor_policy.perturb import random_perturb, reset_optimizer, task_oriented_perturb
from mentor_policy.policy import ActorPolicy
from mentor_policy.schedule import parse_schedule
from mentor_policy.specs import EnvSpec
from mentor_policy.topk_store import TopKStore
from mentor_policy.utils import as_tensor, check_finite, check_shape, sample_truncated_normal, soft_update

log = logging.getLogger(__name__)
STATE_VERSION = 1
BATCH_KEYS = ("image", "action", "reward", "discount", "next_image")
# Profiler labels of the parts of one update, in order (benchmarks/update_time.py --breakdown sums them):
# augmentation, encoder forward (s with grad, s' without), target pass (actor on s', target critic),
# critic step (its backward runs through the encoder), actor step (+ dormant ratio), value step, target EMA.
UPDATE_PARTS = ("update/augment", "update/encode", "update/target", "update/critic", "update/actor",
                "update/value", "update/target_ema")


def moe_aux_terms(probs: torch.Tensor, topk_idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Routing statistics and the two auxiliary-loss terms of a MoE gate.

    ``probs (B, E)`` softmax gate output (differentiable), ``topk_idx (B, k)`` chosen experts.
    - ``usage (E,)``: fraction of all top-k routing slots that went to each expert (no gradient).
    - ``balance``: Switch-Transformer load balance ``E * sum_i usage_i * mean_b probs_bi``; it is 1
      for perfectly uniform routing and its gradient flows through the gate probabilities (the
      reference's one-hot variance term carries no gradient, so it never trains the gate).
    - ``entropy``: mean per-sample gate entropy (lower = more decisive routing).
    """
    num_experts = probs.shape[1]
    counts = torch.zeros(num_experts, device=probs.device, dtype=probs.dtype)
    counts.scatter_add_(0, topk_idx.reshape(-1), torch.ones(topk_idx.numel(), device=probs.device, dtype=probs.dtype))
    usage = counts / topk_idx.numel()
    balance = num_experts * (usage * probs.mean(dim=0)).sum()
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1).mean()
    return {"usage": usage, "balance": balance, "entropy": entropy}


class MentorAgent:
    """MENTOR agent. See the module docstring for the update; ``docs/design.md`` for the contract.

    ``store_dir``: directory of the on-disk top-K snapshot store (task-oriented perturbation);
    ``None`` keeps the store in memory (lost on exit).
    """

    def __init__(self, spec: EnvSpec, cfg: AgentConfig, device: str | torch.device = "auto",
                 store_dir: str | Path | None = None) -> None:
        self.spec = spec
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.policy = ActorPolicy(spec, cfg, device)
        self.device = self.policy.device
        self.encoder = self.policy.encoder
        self.actor = self.policy.actor
        image_dim, proprio_dim = self.encoder.repr_dim, spec.proprio_dim
        self.critic = Critic(image_dim, proprio_dim, spec.action_dim, cfg.feature_dim, cfg.hidden_dim).to(self.device)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.requires_grad_(False)
        self.value_predictor = (ValuePredictor(image_dim, proprio_dim, cfg.feature_dim, cfg.hidden_dim).to(self.device)
                                if cfg.use_value_predictor else None)
        self.opts = {"encoder": _adam(self.encoder, cfg.lr), "actor": _adam(self.actor, cfg.lr),
                     "critic": _adam(self.critic, cfg.lr)}
        if self.value_predictor is not None:
            self.opts["value_predictor"] = _adam(self.value_predictor, cfg.lr)
        self.store = TopKStore(store_dir, cfg.topk) if cfg.perturb_mode == "task" else None
        self.dormant_ratio = 1.0
        self.awake_step = -1  # step of the first update with dormant ratio < target ("awake" sigma rule); -1 = not yet
        self._awake_schedule = parse_schedule(cfg.stddev_schedule)
        self.update_count = 0
        self.perturb_count = 0
        self.last_step = 0
        self._aug_gen = torch.Generator(device=self.device)
        self._aug_gen.manual_seed(cfg.seed + 1)
        self._perturb_gen = torch.Generator()
        self._perturb_gen.manual_seed(cfg.seed + 2)
        self._sync_policy_std()
        self.train(True)

    # ----- derived quantities -----
    @property
    def value_lambda(self) -> float:
        if self.value_predictor is None:
            return 0.0
        return dm.value_lambda(self.dormant_ratio, self.cfg.target_lambda, self.cfg.lambda_temp,
                               self.cfg.target_dormant_ratio)

    @property
    def perturb_factor(self) -> float:
        return dm.perturb_factor(self.dormant_ratio, self.cfg.min_perturb_factor, self.cfg.max_perturb_factor)

    def stddev(self, step: int) -> float:
        return self.policy.stddev(step)

    def exploration_std(self, step: int) -> float:
        """sigma of the acting policy at ``step`` (the caller's step count, as passed to :meth:`update`).

        ``dormant``: sigma from the dormant ratio (MENTOR reference). ``awake`` (DrM): the larger of that
        and ``stddev_schedule`` evaluated at ``step - awake_step``, where ``awake_step`` is the step of
        the first update whose dormant ratio fell below ``target_dormant_ratio`` (before it: the
        schedule's start). ``schedule``: the schedule at ``step`` (DrQ-v2).
        """
        if self.cfg.stddev_type == "schedule":
            return float(self.policy.stddev(step))
        std = dm.exploration_std(self.dormant_ratio, self.cfg.max_stddev, self.cfg.dormant_temp,
                                 self.cfg.target_dormant_ratio)
        if self.cfg.stddev_type == "awake":
            since = 0 if self.awake_step < 0 else max(0, int(step) - self.awake_step)
            std = max(std, float(self._awake_schedule(since)))
        return std

    def _sync_policy_std(self) -> None:
        self.policy.expl_std.fill_(self.exploration_std(self.last_step))
        self.policy.update_count.fill_(self.update_count)

    def train(self, training: bool = True) -> None:
        self.policy.train(training)
        self.critic.train(training)
        if self.value_predictor is not None:
            self.value_predictor.train(training)

    # ----- acting -----
    def act(self, image, proprio=None, *, explore: bool = False, step: int = 0) -> np.ndarray:
        """``image (C, H, W)`` uint8, ``proprio (P,)`` -> action ``(A,)`` float32 in [-1, 1] (ActorPolicy.act)."""
        self.last_step = int(step)
        return self.policy.act(image, proprio, explore=explore, step=step)

    # ----- learning -----
    def _batch_to_tensors(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if self.spec.proprio_dim:
            missing += [k for k in ("proprio", "next_proprio") if k not in batch]
        if missing:
            raise KeyError(f"update batch lacks keys {missing}; has {sorted(batch)}")
        t = {k: as_tensor(batch[k], self.device) for k in batch if k in BATCH_KEYS + ("proprio", "next_proprio")}
        b = t["image"].shape[0]
        img_shape = (b, self.policy.in_channels, *self.spec.image_size)
        for k in ("image", "next_image"):
            check_shape(k, t[k], img_shape)
            if t[k].dtype != torch.uint8:
                raise ValueError(f"batch[{k!r}] must be uint8, got {t[k].dtype}")
        check_shape("action", t["action"], (b, self.spec.action_dim))
        for k in ("reward", "discount"):
            t[k] = t[k].to(torch.float32).reshape(-1, 1) if t[k].dim() <= 2 else t[k]
            check_shape(k, t[k], (b, 1))
        t["action"] = t["action"].to(torch.float32)
        if self.spec.proprio_dim:
            for k in ("proprio", "next_proprio"):
                t[k] = t[k].to(torch.float32)
                check_shape(k, t[k], (b, self.spec.proprio_dim))
        for k in ("action", "reward", "discount", "proprio", "next_proprio"):
            if k in t:
                check_finite(f"batch[{k!r}]", t[k])
        return t

    def _encode(self, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cl = self.cfg.channels_last
        with record_function(UPDATE_PARTS[0]):
            obs_img = random_shift(t["image"], self.cfg.aug_pad, self._aug_gen, channels_last=cl)
            next_img = random_shift(t["next_image"], self.cfg.aug_pad, self._aug_gen, channels_last=cl)
        bf16 = self.cfg.encoder_precision == "bf16"  # the heads train in float32 either way
        with record_function(UPDATE_PARTS[1]):
            obs = self.policy.features(obs_img, t.get("proprio"), bf16=bf16)
            with torch.no_grad():
                next_obs = self.policy.features(next_img, t.get("next_proprio"), bf16=bf16)
        return obs, next_obs

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One gradient update on ``batch`` (see ``docs/design.md`` for keys/shapes); returns metrics."""
        t = self._batch_to_tensors(batch)
        self.last_step = int(step)
        self.train(True)
        obs, next_obs = self._encode(t)
        std = self.stddev(step)
        metrics: dict[str, float] = {}
        with torch.no_grad(), record_function(UPDATE_PARTS[2]):
            next_mu, _ = self.actor(next_obs)
            next_action = sample_truncated_normal(next_mu, std, self.cfg.stddev_clip)
            # one target-critic pass for the critic's target (s') and the value regression target (s)
            both_q1, both_q2 = self.critic_target(torch.cat([next_obs, obs.detach()]),
                                                  torch.cat([next_action, t["action"]]))
            b = obs.shape[0]
            min_q = torch.min(both_q1, both_q2)
            next_q, value_target = min_q[:b], min_q[b:]
        with record_function(UPDATE_PARTS[3]):
            metrics.update(self._update_critic(obs, next_obs, t, next_q))
        with record_function(UPDATE_PARTS[4]):
            metrics.update(self._update_actor(obs.detach(), std))
        if self.value_predictor is not None:
            with record_function(UPDATE_PARTS[5]):
                metrics.update(self._update_value(obs.detach(), value_target))
        with record_function(UPDATE_PARTS[6]):
            soft_update(self.critic_target, self.critic, self.cfg.critic_tau)
        self.update_count += 1
        metrics["perturbed"] = 0.0
        if self.cfg.perturb_mode != "none" and self.update_count % self.cfg.perturb_interval == 0:
            metrics["perturbed"] = float(self.perturb())
        if self.awake_step < 0 and self.dormant_ratio < self.cfg.target_dormant_ratio:
            self.awake_step = int(step)
        self._sync_policy_std()
        metrics.update({"dormant_ratio": self.dormant_ratio, "actor_stddev": self.stddev(step),
                        "value_lambda": self.value_lambda, "perturb_factor": self.perturb_factor,
                        "update_count": float(self.update_count)})
        return metrics

    def _update_critic(self, obs, next_obs, t, next_q) -> dict[str, float]:
        lam = self.value_lambda
        with torch.no_grad():
            target_v = next_q
            if self.value_predictor is not None and lam > 0.0:
                target_v = lam * self.value_predictor(next_obs) + (1.0 - lam) * next_q
            target_q = t["reward"] + t["discount"] * target_v
        q1, q2 = self.critic(obs, t["action"])
        loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        check_finite("critic loss", loss.detach())
        self.opts["encoder"].zero_grad(set_to_none=True)
        self.opts["critic"].zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.critic_grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(self.critic.parameters()) + list(self.encoder.parameters()),
                                           self.cfg.critic_grad_clip)
        self.opts["critic"].step()
        self.opts["encoder"].step()
        return {"critic_loss": loss.item(), "critic_q1": q1.mean().item(), "critic_target_q": target_q.mean().item()}

    def _update_actor(self, obs: torch.Tensor, std: float) -> dict[str, float]:
        acts: dict[str, torch.Tensor] = {}
        mu, routing = self.actor(obs, acts=acts)
        action = sample_truncated_normal(mu, std, self.cfg.stddev_clip)
        q1, q2 = self.critic(obs, action)
        q_loss = -torch.min(q1, q2).mean()
        loss = q_loss
        metrics: dict[str, float] = {}
        if routing is not None:
            terms = moe_aux_terms(routing["probs"], routing["topk_idx"])
            aux = self.cfg.aux_loss_scale * (self.cfg.aux_balance_coef * terms["balance"]
                                             + self.cfg.aux_entropy_coef * terms["entropy"])
            loss = loss + aux
            metrics.update({"aux_loss": aux.item(), "moe_balance": terms["balance"].item(),
                            "gate_entropy": terms["entropy"].item()})
            metrics.update({f"expert_usage/{i}": float(u) for i, u in enumerate(terms["usage"].tolist())})
        check_finite("actor loss", loss.detach())
        params = [p for p in self.actor.parameters()]
        # gradients for the actor only: no wasted weight-gradient work in the critic
        grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads):
            p.grad = g
        if self.cfg.actor_grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.actor_grad_clip)
        self.opts["actor"].step()
        self.dormant_ratio = dm.dormant_ratio(acts, self.cfg.dormant_threshold)
        metrics.update({"actor_loss": q_loss.item(), "actor_mu_abs": mu.detach().abs().mean().item()})
        return metrics

    def _update_value(self, obs: torch.Tensor, value_target: torch.Tensor) -> dict[str, float]:
        v = self.value_predictor(obs)
        err = v - value_target
        weight = torch.where(err > 0, 1.0 - self.cfg.expectile, self.cfg.expectile)
        loss = (weight * err.pow(2)).mean()
        opt = self.opts["value_predictor"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"value_loss": loss.item(), "value_mean": v.mean().item()}

    # ----- perturbation -----
    def _perturbed_modules(self) -> dict[str, torch.nn.Module]:
        mods = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}
        if self.value_predictor is not None:
            mods["value_predictor"] = self.value_predictor
        return mods

    def perturb(self) -> bool:
        """Perturb now (normally called by :meth:`update`). Task-oriented mode with fewer than two
        snapshots falls back to ``cfg.perturb_fallback`` ("random" = DrM mixing, "skip")."""
        mode = self.cfg.perturb_mode
        if mode == "none":
            return False
        alpha = self.perturb_factor
        snapshots = self.store.load_all() if mode == "task" and self.store is not None else []
        if mode == "task" and len(snapshots) < 2:
            if self.cfg.perturb_fallback == "skip":
                log.info("perturbation skipped: top-K store holds %d snapshot(s)", len(snapshots))
                return False
            mode = "random"
        for name, module in self._perturbed_modules().items():
            if mode == "task":
                task_oriented_perturb(module, [s[name] for s in snapshots], alpha, self._perturb_gen)
            else:
                random_perturb(module, alpha)
        for opt in self.opts.values():  # every perturbed net, plus the encoder's Adam state
            reset_optimizer(opt)
        self.perturb_count += 1
        log.info("perturbation #%d (%s, alpha=%.3f, beta=%.3f)", self.perturb_count, mode, alpha, self.dormant_ratio)
        return True

    def snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        """CPU copy of the perturbed networks (what the top-K store keeps)."""
        return {name: {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()}
                for name, m in self._perturbed_modules().items()}

    def end_episode(self, episode_return: float, step: int) -> dict[str, float]:
        """Offer the current networks to the top-K store with this training episode's return."""
        if not math.isfinite(float(episode_return)):
            raise ValueError(f"end_episode: episode return must be finite, got {episode_return}")
        if self.store is None:
            return {"topk_accepted": 0.0, "topk_size": 0.0}
        accepted = False
        if self.store.would_accept(float(episode_return)):
            accepted = self.store.offer(float(episode_return), self.snapshot(), step=int(step))
        return {"topk_accepted": float(accepted), "topk_size": float(len(self.store)),
                "topk_min_return": float(self.store.min_return()) if len(self.store) else 0.0}

    # ----- state -----
    def policy_state(self) -> dict[str, torch.Tensor]:
        """Encoder + actor + exploration std + update count, for a policy process."""
        self._sync_policy_std()
        return self.policy.policy_state()

    def _modules(self) -> dict[str, torch.nn.Module]:
        mods = {"encoder": self.encoder, "actor": self.actor, "critic": self.critic,
                "critic_target": self.critic_target}
        if self.value_predictor is not None:
            mods["value_predictor"] = self.value_predictor
        return mods

    def state_dict(self) -> dict[str, Any]:
        """Full training state: networks, optimisers, counters, dormant ratio, RNG states.

        Holds only tensors and primitive containers (loadable with ``weights_only=True``).
        """
        rng = {"torch": torch.get_rng_state(), "aug": self._aug_gen.get_state(),
               "perturb": self._perturb_gen.get_state(), "policy_torch": self.policy._generator.get_state(),
               "policy_numpy": _np_state(self.policy._np_rng)}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "version": STATE_VERSION,
            "config": self.cfg.to_dict(),
            "spec": {"frame_channels": self.spec.frame_channels, "image_size": list(self.spec.image_size),
                     "proprio_dim": self.spec.proprio_dim, "action_dim": self.spec.action_dim},
            "nets": {name: m.state_dict() for name, m in self._modules().items()},
            "optims": {name: o.state_dict() for name, o in self.opts.items()},
            "counters": {"update_count": self.update_count, "perturb_count": self.perturb_count,
                         "last_step": self.last_step, "awake_step": self.awake_step},
            "dormant_ratio": float(self.dormant_ratio),
            "rng": rng,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`. ``CheckpointError`` on a wrong version / missing entry / shape."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            got = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise CheckpointError(f"agent state has version {got!r}, expected {STATE_VERSION}")
        try:
            nets, optims = state["nets"], state["optims"]
            for name, module in self._modules().items():
                if name not in nets:
                    raise CheckpointError(f"agent state lacks network {name!r}")
                load_module_state(module, nets[name], name)
            for name, opt in self.opts.items():
                opt.load_state_dict(optims[name])
            counters = state["counters"]
            self.update_count = int(counters["update_count"])
            self.perturb_count = int(counters["perturb_count"])
            self.last_step = int(counters["last_step"])
            self.awake_step = int(counters.get("awake_step", -1))
            self.dormant_ratio = float(state["dormant_ratio"])
            self._load_rng(state["rng"])
        except KeyError as exc:
            raise CheckpointError(f"agent state lacks entry {exc}") from exc
        if self.cfg.channels_last:
            self.encoder.to(memory_format=torch.channels_last)
        self._sync_policy_std()

    def _load_rng(self, rng: Mapping[str, Any]) -> None:
        torch.set_rng_state(rng["torch"])
        self._aug_gen.set_state(rng["aug"])
        self._perturb_gen.set_state(rng["perturb"])
        self.policy._generator.set_state(rng["policy_torch"])
        self.policy._np_rng.bit_generator.state = _np_state_from(rng["policy_numpy"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


def _adam(module: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (same update rule, one pass over the parameters)."""
    return torch.optim.Adam(module.parameters(), lr=lr, fused=True)


def _np_state(gen: np.random.Generator) -> dict[str, Any]:
    """numpy bit-generator state as primitives (big ints as decimal strings for safe loading)."""
    st = gen.bit_generator.state
    inner = {k: str(v) for k, v in st["state"].items()}
    return {"bit_generator": st["bit_generator"], "state": inner, "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"])}


def _np_state_from(d: Mapping[str, Any]) -> dict[str, Any]:
    return {"bit_generator": d["bit_generator"], "state": {k: int(v) for k, v in d["state"].items()},
            "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}
