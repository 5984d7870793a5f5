"""MentorAgent end to end at tiny sizes: acting, updating, metrics, perturbation, variants."""
import inspect

import numpy as np
import pytest
import torch

from mentor_policy.agent import MentorAgent
from mentor_policy.config import load_agent_config
from mentor_policy.policy import ActorPolicy
from mentor_policy.specs import EnvSpec

SPEC = EnvSpec(3, (24, 24), 3, 2)
SMALL = {"batch_size": 8, "hidden_dim": 32, "num_expl_steps": 5}


def _agent(names=("tiny",), spec=SPEC, store_dir=None, **over):
    return MentorAgent(spec, load_agent_config(list(names), {**SMALL, **over}), device="cpu", store_dir=store_dir)


def _batch(rng, spec=SPEC, b=8, fs=3):
    c = spec.stacked_channels(fs)
    h, w = spec.image_size
    batch = {"image": rng.integers(0, 256, (b, c, h, w), dtype=np.uint8),
             "next_image": rng.integers(0, 256, (b, c, h, w), dtype=np.uint8),
             "action": rng.uniform(-1, 1, (b, spec.action_dim)).astype(np.float32),
             "reward": rng.standard_normal(b).astype(np.float32), "discount": np.full(b, 0.97, np.float32)}
    if spec.proprio_dim:
        batch["proprio"] = rng.standard_normal((b, spec.proprio_dim)).astype(np.float32)
        batch["next_proprio"] = rng.standard_normal((b, spec.proprio_dim)).astype(np.float32)
    return batch


def test_act_exploration_eval_and_noise():
    agent = _agent()
    rng = np.random.default_rng(0)
    b = _batch(rng)
    img, prop = b["image"][0], b["proprio"][0]
    early = agent.act(img, prop, explore=True, step=0)
    assert early.shape == (2,) and early.dtype == np.float32 and np.abs(early).max() <= 1
    mean1 = agent.act(img, prop, step=0)
    mean2 = agent.act(img, prop, step=100)
    np.testing.assert_array_equal(mean1, mean2)
    noisy = agent.act(img, prop, explore=True, step=100)
    assert not np.allclose(noisy, mean1) and np.abs(noisy).max() <= 1
    assert not np.allclose(early, mean1)


def test_agent_and_policy_share_one_act_protocol_that_defaults_to_the_mean_action():
    """MentorAgent.act once defaulted to exploring (eval_mode=False) and ActorPolicy.act to the mean action."""
    agent = _agent()
    b = _batch(np.random.default_rng(1))
    img, prop = b["image"][0], b["proprio"][0]
    for act in (agent.act, agent.policy.act):
        params = inspect.signature(act).parameters
        assert params["explore"].default is False and params["explore"].kind is inspect.Parameter.KEYWORD_ONLY
        np.testing.assert_array_equal(act(img, prop, step=10**6), act(img, prop, explore=False))
    np.testing.assert_array_equal(agent.act(img, prop), agent.policy.act(img, prop))
    with pytest.raises(TypeError):
        agent.act(img, prop, 5, True)  # the old positional (step, eval_mode) call must not silently mean something


def test_act_rejects_bad_inputs():
    agent = _agent()
    img = np.zeros((9, 24, 24), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        agent.act(np.zeros((3, 24, 24), np.uint8), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="uint8"):
        agent.act(img.astype(np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        agent.act(img, np.array([0, np.nan, 0], np.float32))
    with pytest.raises(ValueError, match="proprio"):
        agent.act(img, None)


def test_update_metrics_and_learning_signals():
    agent = _agent()
    rng = np.random.default_rng(1)
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in agent._modules().items()}
    m = agent.update(_batch(rng), step=10)
    for key in ("critic_loss", "actor_loss", "value_loss", "dormant_ratio", "actor_stddev", "value_lambda",
                "gate_entropy", "perturbed", "aux_loss"):
        assert key in m and np.isfinite(m[key]), key
    usage = [m[f"expert_usage/{i}"] for i in range(agent.cfg.num_experts)]
    assert sum(usage) == pytest.approx(1.0) and m["perturbed"] == 0.0
    assert 0.0 <= m["dormant_ratio"] <= 1.0 and m["dormant_ratio"] == agent.dormant_ratio
    for name, module in agent._modules().items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters()))
        assert changed, f"{name} did not change"
    # critic target moved exactly by Polyak tau toward the updated critic
    tau = agent.cfg.critic_tau
    for t_old, t_new, c in zip(before["critic_target"], agent.critic_target.parameters(), agent.critic.parameters()):
        assert torch.allclose(t_new, (1 - tau) * t_old + tau * c, atol=1e-6)


def test_critic_fits_a_fixed_batch():
    agent = _agent(lr=1e-3, perturb_mode="none", aug_pad=0)
    batch = _batch(np.random.default_rng(2))
    batch["discount"][:] = 0.0  # the target is the reward itself: plain regression
    losses = [agent.update(batch, 100)["critic_loss"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_bf16_encoder_updates_track_the_float32_ones_and_still_fit():
    """encoder_precision=bf16: the same first update as float32 up to bfloat16 rounding, float32 features and
    weights, and the critic still fits a fixed batch. Unknown precisions are refused."""
    batch = _batch(np.random.default_rng(3))
    batch["discount"][:] = 0.0
    first = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        agent = _agent(lr=1e-3, perturb_mode="none", aug_pad=0, encoder_precision=precision, seed=0)
        first[precision] = agent.update(batch, 100)["critic_loss"]
        assert all(p.dtype == torch.float32 for p in agent.encoder.parameters())
        obs, _ = agent._encode(agent._batch_to_tensors(batch))
        assert obs.dtype == torch.float32
        losses = [agent.update(batch, 100)["critic_loss"] for _ in range(30)]
        assert np.all(np.isfinite(losses)) and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert first["bf16"] == pytest.approx(first["fp32"], rel=0.05)
    with pytest.raises(ValueError, match="encoder_precision"):
        load_agent_config("tiny", {"encoder_precision": "fp16"})


def test_batch_validation():
    agent = _agent()
    rng = np.random.default_rng(3)
    b = _batch(rng)
    del b["next_image"]
    with pytest.raises(KeyError, match="next_image"):
        agent.update(b, 0)
    b = _batch(rng)
    b["reward"][2] = np.nan
    with pytest.raises(ValueError, match="reward.*non-finite"):
        agent.update(b, 0)
    b = _batch(rng)
    b["action"] = b["action"][:, :1]
    with pytest.raises(ValueError, match="action"):
        agent.update(b, 0)


def test_task_perturbation_with_store(tmp_path):
    agent = _agent(store_dir=tmp_path, perturb_interval=3, topk=3)
    rng = np.random.default_rng(4)
    perturbed = []
    for i in range(6):
        perturbed.append(agent.update(_batch(rng), i)["perturbed"])
        agent.end_episode(float(i), i)
    assert perturbed == [0, 0, 1, 0, 0, 1]
    assert agent.perturb_count == 2 and len(agent.store) == 3
    assert all(len(o.state) == 0 for o in agent.opts.values())  # optimiser state reset after the last one
    snaps = agent.store.load_all()
    assert set(snaps[0]) == {"actor", "critic", "critic_target", "value_predictor"}


def test_task_perturbation_moves_toward_snapshots(tmp_path):
    agent = _agent(store_dir=tmp_path, perturb_interval=1000, topk=3)
    rng = np.random.default_rng(5)
    agent.update(_batch(rng), 0)
    # two identical snapshots far away from the current weights: perturbing must move toward them
    far = agent.snapshot()
    for sd in far.values():
        for v in sd.values():
            v.add_(1.0)
    agent.store.offer(1.0, far)
    agent.store.offer(2.0, far)
    alpha = agent.perturb_factor
    w0 = agent.actor.fc1.weight.detach().clone()
    assert agent.perturb()
    expected = alpha * w0 + (1 - alpha) * far["actor"]["fc1.weight"]
    assert torch.allclose(agent.actor.fc1.weight.detach(), expected, atol=1e-5)


@pytest.mark.parametrize("fallback,expected", [("random", 1.0), ("skip", 0.0)])
def test_fallback_with_fewer_than_two_snapshots(fallback, expected):
    agent = _agent(perturb_interval=1, perturb_fallback=fallback)
    before = agent.actor.fc1.weight.detach().clone()
    m = agent.update(_batch(np.random.default_rng(6)), 0)
    assert m["perturbed"] == expected
    if fallback == "skip":  # only the Adam step changed it, by at most ~lr per element
        assert (agent.actor.fc1.weight.detach() - before).abs().max() < 1e-3


def test_mlp_random_perturbation_variant():
    agent = _agent(("tiny", "no_moe", "no_tp"), perturb_interval=2)
    rng = np.random.default_rng(7)
    ms = [agent.update(_batch(rng), i) for i in range(2)]
    assert ms[1]["perturbed"] == 1.0 and "gate_entropy" not in ms[1]
    assert agent.store is None and agent.end_episode(1.0, 2)["topk_accepted"] == 0.0


def test_drqv2_variant_uses_schedule_and_no_value_predictor():
    agent = _agent(("tiny", "drqv2"), stddev_schedule="linear(1.0,0.1,100)")
    assert agent.value_predictor is None and "value_predictor" not in agent.opts
    m = agent.update(_batch(np.random.default_rng(8)), step=50)
    assert m["value_lambda"] == 0.0 and m["actor_stddev"] == pytest.approx(0.55) and m["perturbed"] == 0.0
    assert agent.stddev(100) == pytest.approx(0.1)


def test_multi_camera_without_proprio():
    spec = EnvSpec(6, (20, 28), 0, 3)
    agent = _agent(spec=spec)
    m = agent.update(_batch(np.random.default_rng(9), spec=spec), 0)
    assert np.isfinite(m["critic_loss"])
    a = agent.act(np.zeros((18, 20, 28), np.uint8), None, step=100)
    assert a.shape == (3,)


def test_policy_state_drives_a_separate_policy():
    agent = _agent()
    rng = np.random.default_rng(10)
    agent.update(_batch(rng), 0)
    policy = ActorPolicy(SPEC, agent.cfg, "cpu")
    policy.load_policy_state(agent.policy_state())
    img = _batch(rng)["image"][0]
    prop = np.ones(3, np.float32)
    np.testing.assert_allclose(policy.act(img, prop, step=100), agent.act(img, prop, step=100), atol=1e-6)
    assert float(policy.expl_std) == pytest.approx(agent.stddev(100))
    assert int(policy.update_count) == 1


def test_end_episode_offers_snapshots(tmp_path):
    agent = _agent(store_dir=tmp_path, topk=2)
    out = [agent.end_episode(r, i)["topk_accepted"] for i, r in enumerate([1.0, 2.0, 0.5, 3.0])]
    assert out == [1.0, 1.0, 0.0, 1.0]
    assert agent.store.returns == [3.0, 2.0]
    with pytest.raises(ValueError, match="finite"):
        agent.end_episode(float("inf"), 5)


def test_awake_sigma_starts_at_the_schedule_and_never_collapses_at_update_one():
    """DrM's awake rule: sigma = max(sigma(beta), schedule(step - first step with beta < target))."""
    from mentor_policy import dormant as dm
    agent = _agent(stddev_type="awake", stddev_schedule="linear(1.0,0.1,1000)", target_dormant_ratio=0.99)
    assert agent.stddev(0) == pytest.approx(1.0)  # before any update: the schedule's start
    rng = np.random.default_rng(3)
    m = agent.update(_batch(rng), step=400)
    assert agent.awake_step == 400  # beta < 0.99 at the first update: awake from there
    from_beta = dm.exploration_std(agent.dormant_ratio, agent.cfg.max_stddev, agent.cfg.dormant_temp, 0.99)
    assert m["actor_stddev"] == pytest.approx(max(from_beta, 1.0))  # the schedule at 0 steps since awakening
    agent.update(_batch(rng), step=900)
    from_beta = dm.exploration_std(agent.dormant_ratio, agent.cfg.max_stddev, agent.cfg.dormant_temp, 0.99)
    assert agent.stddev(900) == pytest.approx(max(from_beta, 1.0 - 0.9 * 500 / 1000))
    # the awakening step survives a checkpoint round trip
    other = _agent(stddev_type="awake", stddev_schedule="linear(1.0,0.1,1000)", target_dormant_ratio=0.99)
    other.load_state_dict(agent.state_dict())
    assert other.awake_step == 400 and other.stddev(900) == pytest.approx(agent.stddev(900))


def test_dormant_sigma_follows_beta_alone():
    from mentor_policy import dormant as dm
    agent = _agent(stddev_type="dormant")
    m = agent.update(_batch(np.random.default_rng(4)), step=10)
    assert m["actor_stddev"] == pytest.approx(dm.exploration_std(m["dormant_ratio"], agent.cfg.max_stddev))
    assert 0.0 < m["dormant_ratio"] < 1.0  # post-activation: neither the dead 0 nor the initial 1


def test_ablation_presets_differ_from_mentor_only_in_their_switch():
    base = load_agent_config("paper").to_dict()
    expected = {"no_moe": {"use_moe"}, "no_tp": {"perturb_mode"},
                # inherent to DrQ-v2: MLP actor, scheduled sigma, no value predictor, no perturbation
                "drqv2": {"use_moe", "stddev_type", "use_value_predictor", "perturb_mode"}}
    for name, switches in expected.items():
        cfg = load_agent_config(["paper", name]).to_dict()
        assert {k for k in base if cfg[k] != base[k]} == switches, name
    assert load_agent_config(["cpu", "drqv2"]).actor_grad_clip == load_agent_config("cpu").actor_grad_clip
