"""DMC and Meta-World adapters: config validation, and one short real episode each.

The episodes run real dm-control / Meta-World with MuJoCo EGL rendering. Both packages need an
older mujoco than the project's (dm-control 1.0.50 -> mujoco 3.17, metaworld 3.1.1 -> mujoco
3.3.0), provided by an overlay directory put first on PYTHONPATH (docs/benchmarks.md); the
episode therefore runs in a subprocess with that overlay. The test skips only when neither the
current interpreter nor an overlay can build the suite, and says why.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_envs.suites import check_action, frame_to_obs, is_suite_task, parse_suite_task
from robot_envs.suites.dmc import DMCConfig, split_dmc_name
from robot_envs.suites.metaworld import MetaWorldConfig

ROOT = Path(__file__).resolve().parents[3]
OVERLAYS = {
    "dmc": Path(os.environ.get("MENTOR_DMC_SITE", Path(sys.prefix) / "overlays" / "dmc")),
    "metaworld": Path(os.environ.get("MENTOR_METAWORLD_SITE", Path(sys.prefix) / "overlays" / "metaworld")),
}

# Runs in the child: one episode of a few agent steps, prints a JSON summary on the last line.
_EPISODE_SCRIPT = r"""
import json, sys
import numpy as np
from robot_envs.suites import make_suite_env
name, overrides = sys.argv[1], json.loads(sys.argv[2])
env = make_suite_env(name, **overrides)
obs = env.reset()
out = {"spec": [env.spec.frame_channels, list(env.spec.image_size), env.spec.proprio_dim, env.spec.action_dim],
       "image_shape": list(obs["image"].shape), "image_dtype": str(obs["image"].dtype),
       "proprio_shape": list(obs["proprio"].shape), "image_std": float(obs["image"].std()),
       "steps": 0, "rewards": [], "success_types": [], "terminated": False, "truncated": False}
rng = np.random.default_rng(0)
images = [obs["image"]]
for _ in range(50):
    obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, env.spec.action_dim))
    images.append(obs["image"])
    out["steps"] += 1; out["rewards"].append(float(r)); out["success_types"].append(type(info["success"]).__name__)
    if term or trunc:
        out["terminated"], out["truncated"] = bool(term), bool(trunc)
        break
try:
    env.step(np.zeros(env.spec.action_dim))
    out["step_after_end"] = "allowed"
except RuntimeError:
    out["step_after_end"] = "refused"
out["frames_differ"] = bool(any((im != images[0]).any() for im in images[1:]))
env.close()
print(json.dumps(out))
"""


def _run_episode(name: str, overrides: dict) -> dict:
    suite, _ = parse_suite_task(name)
    overlay = OVERLAYS[suite]
    paths = ([str(overlay)] if overlay.is_dir() else []) + [str(ROOT)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    proc = subprocess.run([sys.executable, "-c", _EPISODE_SCRIPT, name, json.dumps(overrides)],
                          capture_output=True, text=True, env=env, timeout=240)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no stderr"
        if not overlay.is_dir() and ("ImportError" in tail or "RuntimeError" in tail):
            pytest.skip(f"{suite} cannot run here and no overlay at {overlay}: {tail}")
        raise AssertionError(f"{name} episode failed (overlay {overlay}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_suite_names_parse():
    assert parse_suite_task("dmc:cartpole_swingup") == ("dmc", "cartpole_swingup")
    assert parse_suite_task("metaworld:pick-place") == ("metaworld", "pick-place")
    assert is_suite_task("dmc:hopper_hop") and not is_suite_task("reach") and not is_suite_task("gym:x")
    assert split_dmc_name("ball_in_cup_catch") == ("ball_in_cup", "catch")
    assert split_dmc_name("walker_run") == ("walker", "run")
    assert split_dmc_name("point_mass_easy") == ("point_mass", "easy")
    for bad in ("cartpole_swingup", "gym:cartpole", "dmc:", "metaworld:  "):
        with pytest.raises(ValueError):
            parse_suite_task(bad)
    with pytest.raises(ValueError):
        split_dmc_name("cartpole")


def test_configs_apply_paper_defaults_and_validate():
    assert DMCConfig(domain="quadruped", task="walk").camera_id == 2
    cfg = DMCConfig(domain="cartpole", task="swingup")
    assert (cfg.camera_id, cfg.action_repeat, cfg.image_size) == (0, 2, (84, 84))
    mw = MetaWorldConfig(task="assembly")
    assert (mw.task, mw.camera_name, mw.episode_length, mw.action_repeat) == ("assembly-v3", "corner2", 500, 2)
    with pytest.raises(ValueError):
        DMCConfig(domain="cartpole", task="swingup", action_repeat=0)
    with pytest.raises(ValueError):
        DMCConfig(domain="cartpole", task="swingup", image_size=(8, 8))
    with pytest.raises(ValueError):
        MetaWorldConfig(task="assembly", episode_length=501)
    with pytest.raises(ValueError):
        MetaWorldConfig(task="assembly", camera_pos=(0.0, float("nan"), 1.0))


def test_action_and_frame_checks():
    np.testing.assert_allclose(check_action([2.0, -0.5], 2), [1.0, -0.5])
    with pytest.raises(ValueError, match="NaN"):
        check_action([float("nan"), 0.0], 2)
    with pytest.raises(ValueError, match="shape"):
        check_action([0.0, 0.0, 0.0], 2)
    obs = frame_to_obs(np.full((20, 24, 3), 7, np.uint8), (20, 24))
    assert obs["image"].shape == (3, 20, 24) and obs["proprio"].shape == (0,)
    with pytest.raises(ValueError):
        frame_to_obs(np.zeros((20, 20, 3), np.uint8), (20, 24))


@pytest.mark.sim
def test_dmc_short_episode():
    # cartpole: 0.01 s per simulator step, so 0.1 s = 10 simulator steps = 5 agent steps (repeat 2).
    out = _run_episode("dmc:cartpole_swingup", {"image_size": [48, 40], "time_limit_s": 0.1})
    assert out["spec"] == [3, [48, 40], 0, 1]
    assert out["image_shape"] == [3, 48, 40] and out["image_dtype"] == "uint8" and out["proprio_shape"] == [0]
    assert out["image_std"] > 1.0  # a rendered scene, not a blank frame
    assert out["steps"] == 5 and out["truncated"] and not out["terminated"]
    assert all(np.isfinite(out["rewards"])) and set(out["success_types"]) == {"bool"} and out["frames_differ"]
    assert out["step_after_end"] == "refused"


@pytest.mark.sim
def test_metaworld_short_episode():
    out = _run_episode("metaworld:reach", {"image_size": [48, 48], "episode_length": 10})
    assert out["spec"] == [3, [48, 48], 0, 4]
    assert out["image_shape"] == [3, 48, 48] and out["image_dtype"] == "uint8" and out["proprio_shape"] == [0]
    assert out["image_std"] > 1.0
    assert out["steps"] == 5 and out["truncated"]
    assert all(np.isfinite(out["rewards"])) and all(r >= 0 for r in out["rewards"])  # reach-v3 reward is >= 0
    assert set(out["success_types"]) == {"bool"} and out["frames_differ"]
    assert out["step_after_end"] == "refused"
