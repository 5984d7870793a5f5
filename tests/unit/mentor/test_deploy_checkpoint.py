"""mentor.policy_io.load_deploy_policy: learner checkpoints (best.pt, latest.pt) and bare policy states; the
policy is built from the agent config the checkpoint records."""
from __future__ import annotations

import numpy as np
import pytest

from mentor.policy_io import agent_config_from_dict, config_differences, load_deploy_policy

pytest.importorskip("torch")


def _setup():
    from mentor_policy.config import load_agent_config
    from mentor_policy.policy import ActorPolicy
    from mentor_policy.specs import EnvSpec
    spec = EnvSpec(frame_channels=3, image_size=(84, 84), proprio_dim=4, action_dim=3)
    trained = load_agent_config("tiny", {"hidden_dim": 16, "feature_dim": 8, "encoder_channels": 4,
                                         "num_experts": 2, "moe_top_k": 1, "expert_hidden_dim": 8,
                                         "gate_hidden_dim": 8, "frame_stack": 2})
    policy = ActorPolicy(spec, trained, device="cpu")
    return spec, trained, policy


def _obs(cfg):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (3 * cfg.frame_stack, 84, 84), dtype=np.uint8), np.zeros(4, np.float32)


@pytest.mark.parametrize("name", ["best.pt", "latest.pt"])
def test_learner_checkpoints_load_with_their_agent_config(tmp_path, name):
    from mentor_policy.checkpoint import save_checkpoint
    from mentor_policy.config import load_agent_config
    spec, trained, policy = _setup()
    extra = {"eval_success": 0.8, "weights_version": 3} if name == "best.pt" else {"agent": {}, "updates": 5}
    save_checkpoint(tmp_path / name, {"policy": policy.policy_state(), "env_steps": 10, "task": "reach",
                                      "cameras": ["front"], "agent_config": {**trained.to_dict(), "from_the_future": 1},
                                      **extra})
    warnings: list[str] = []
    given = load_agent_config("tiny")  # the user's (default) choice: other widths than the trained networks
    deployed = load_deploy_policy("", str(tmp_path / name), spec, given, device="cpu", log=warnings.append,
                                  task="reach", cameras=["wrist"])
    assert deployed.cfg == trained and deployed.cfg.frame_stack == 2
    image, proprio = _obs(trained)
    assert np.array_equal(deployed.act(image, proprio), policy.act(image, proprio))
    text = "\n".join(warnings)
    assert given.hidden_dim != 16 and f"hidden_dim: {given.hidden_dim!r} -> 16" in text and "from_the_future" in text
    assert "cameras ['front'], deploying with ['wrist']" in text and "trained with task" not in text


def test_old_checkpoints_and_bare_states_use_the_given_config(tmp_path):
    from mentor_policy.checkpoint import save_checkpoint
    spec, trained, policy = _setup()
    save_checkpoint(tmp_path / "old.pt", {"agent": {}, "policy": policy.policy_state(), "env_steps": 1})
    save_checkpoint(tmp_path / "state.pt", policy.policy_state())
    warnings: list[str] = []
    for name in ("old.pt", "state.pt"):
        deployed = load_deploy_policy("", str(tmp_path / name), spec, trained, device="cpu", log=warnings.append)
        assert deployed.cfg is trained
    assert warnings == []


def test_agent_config_from_dict_filters_unknown_keys_and_diffs():
    from mentor_policy.config import AgentConfig
    seen: list[str] = []
    cfg = agent_config_from_dict({"hidden_dim": 32, "gone_field": True}, seen.append)
    assert cfg.hidden_dim == 32 and "gone_field" in seen[0]
    assert config_differences(AgentConfig(), cfg) == {"hidden_dim": (AgentConfig().hidden_dim, 32)}
