"""AgentConfig validation and preset / overlay loading."""
import pytest

from mentor_policy.config import CONFIG_DIR, AgentConfig, load_agent_config
from mentor_policy.schedule import parse_schedule


def test_paper_preset_has_paper_numbers():
    cfg = load_agent_config("paper")
    assert (cfg.batch_size, cfg.feature_dim, cfg.hidden_dim) == (256, 50, 1024)
    assert (cfg.num_experts, cfg.moe_top_k, cfg.frame_stack, cfg.nstep) == (16, 4, 3, 3)
    assert (cfg.discount, cfg.lr, cfg.critic_tau, cfg.topk, cfg.expectile) == (0.99, 1e-4, 0.01, 10, 0.9)
    assert cfg.perturb_mode == "task" and cfg.use_moe and cfg.use_value_predictor


@pytest.mark.parametrize("overlay", ["no_moe", "no_tp", "drqv2"])
def test_overlays(overlay):
    cfg = load_agent_config(["paper", overlay])
    if overlay == "no_moe":
        assert not cfg.use_moe and cfg.perturb_mode == "task"
    elif overlay == "no_tp":
        assert cfg.use_moe and cfg.perturb_mode == "random"
    else:
        assert not cfg.use_moe and cfg.perturb_mode == "none" and not cfg.use_value_predictor
        assert cfg.stddev_type == "schedule"


def test_every_task_overlay_loads():
    tasks = sorted(p.stem for p in (CONFIG_DIR / "tasks").glob("*.yaml"))
    assert {"reach", "push", "peg_insertion", "real_peg_insertion"} <= set(tasks)
    for name in tasks:
        assert isinstance(load_agent_config(["paper", f"tasks/{name}"]), AgentConfig)


def test_overrides_and_base_chain(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: tiny\nhidden_dim: 48\n")
    cfg = load_agent_config(path, {"batch_size": 8, "lr": "3e-4"})
    assert (cfg.hidden_dim, cfg.batch_size, cfg.lr, cfg.num_experts) == (48, 8, 3e-4, 4)


def test_unknown_key_is_rejected_with_its_origin(tmp_path):
    with pytest.raises(ValueError, match="unknown agent config key 'hiden_dim'.*overrides"):
        load_agent_config("tiny", {"hiden_dim": 3})
    path = tmp_path / "bad.yaml"
    path.write_text("num_expert: 4\n")
    with pytest.raises(ValueError, match="num_expert.*bad.yaml"):
        load_agent_config(path)


def test_invalid_values_rejected(tmp_path):
    with pytest.raises(ValueError, match="moe_top_k"):
        AgentConfig(num_experts=2, moe_top_k=3)
    with pytest.raises(ValueError, match="expectile"):
        AgentConfig(expectile=1.5)
    with pytest.raises(ValueError, match="perturb_mode"):
        AgentConfig(perturb_mode="sometimes")
    with pytest.raises(ValueError, match="finite"):
        AgentConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="schedule"):
        AgentConfig(stddev_schedule="__import__('os').system('true')")
    with pytest.raises(FileNotFoundError, match="presets"):
        load_agent_config("no_such_preset")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_agent_config(path)


def test_schedule_parsing():
    lin = parse_schedule("linear(1.0, 0.1, 100)")
    assert lin(0) == pytest.approx(1.0) and lin(50) == pytest.approx(0.55) and lin(1000) == pytest.approx(0.1)
    assert parse_schedule("0.2")(123) == pytest.approx(0.2)
    sl = parse_schedule("step_linear(1.0, 0.5, 10, 0.1, 10)")
    assert sl(10) == pytest.approx(0.5) and sl(15) == pytest.approx(0.3) and sl(100) == pytest.approx(0.1)
