"""Launch files (imported or ast-parsed: launch/launch_ros are not installable here) vs setup.py, config/, the graph."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from mentor import graph

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "ros2_ws" / "src" / "mentor"
LAUNCH = ROOT / "launch"
NODE_CONFIGS = {"sim_world_node": "SimWorldNodeConfig", "camera_node": "CameraNodeConfig",
                "robot_node": "RobotNodeConfig", "episode_node": "EpisodeNodeConfig",
                "policy_node": "PolicyNodeConfig", "learner_node": "LearnerNodeConfig",
                "teleop_node": "TeleopNodeConfig", "expert_node": "ExpertNodeConfig",
                "recorder_node": "RecorderNodeConfig"}


def _known_params(exe: str) -> set[str]:
    """Parameters node ``exe`` declares: its config dataclass (+ FrankyRobotConfig under franky.)."""
    cls = getattr(importlib.import_module(f"mentor.{exe}"), NODE_CONFIGS[exe])
    known = {f.name for f in dataclasses.fields(cls)}
    if exe == "robot_node":
        from robot_envs.franky_robot import FrankyRobotConfig
        known |= {f"franky.{f.name}" for f in dataclasses.fields(FrankyRobotConfig)}
    if exe == "camera_node":
        from robot_envs.realsense import RealSenseCameraConfig
        known |= {f"realsense.{f.name}" for f in dataclasses.fields(RealSenseCameraConfig)}
    return known


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((PKG / "setup.py").read_text())
    nodes = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "NODES")
    names = ast.literal_eval(nodes.value)
    return {**{n: f"mentor.{n}:main" for n in names}, "mentor-run": "mentor.runner:main"}


def _launch_args(path: Path) -> dict[str, str]:
    """A launch file's argument defaults: its ARGS table, imported (it needs mentor, not launch, at import)."""
    spec = importlib.util.spec_from_file_location(path.name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.ARGS
    assert all(len(row) == 3 and all(isinstance(x, str) for x in row) for row in rows), path.name
    names = [name for name, _default, _help in rows]
    assert len(names) == len(set(names)), f"{path.name} declares an argument twice"
    return {name: default for name, default, _help in rows}


def test_launch_files_exist_and_use_only_launch_apis():
    files = sorted(LAUNCH.glob("*.launch.py"))
    assert {f.name for f in files} >= {"train_real.launch.py", "deploy.launch.py"}
    for f in files:
        tree = ast.parse(f.read_text())
        roots = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert roots <= {"launch", "launch_ros", "mentor", "yaml"}, f"{f.name} imports {roots}"
        assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
        calls = [n for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "launch_description"]
        assert calls and calls[0].args[0].value in graph.MODES, f"{f.name} must build a mentor graph"
    # the shared body creates only mentor nodes
    body = ast.parse((PKG / "mentor" / "launch_support.py").read_text())
    nodes = [n for n in ast.walk(body) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"]
    assert nodes and all(any(k.arg == "package" and k.value.value == "mentor" for k in c.keywords) for c in nodes)


@pytest.mark.parametrize("name,mode", [("train_real.launch.py", "train"), ("deploy.launch.py", "deploy"),
                                       ("record_demos.launch.py", "record")])
def test_launch_defaults_parse_into_graph_args(name, mode):
    """Every launch file's defaults (as `ros2 launch` would pass them) build a valid graph."""
    from mentor.launch_support import graph_args_from_strings
    values = dict(_launch_args(LAUNCH / name))
    values.update({"use_sim": "true", "robot_ip": "auto"})
    if mode == "deploy":
        values["checkpoint"] = "runs/x/learner/checkpoints/latest.pt"
    args = graph_args_from_strings(mode, values)
    assert args.mode == mode and args.use_sim is True and isinstance(args.camera_serials, list)
    assert graph.build_graph(args)


def test_launch_argument_strings_are_parsed_by_field_type():
    from mentor.launch_support import graph_args_from_strings
    args = graph_args_from_strings("train", {"task": "reach", "use_sim": "true", "robot_ip": "auto",
                                             "camera_names": "['front', 'side']", "control_hz": "20",
                                             "max_env_steps": "500", "use_teleop": "false"})
    assert args.camera_names == ["front", "side"] and args.control_hz == 20.0 and args.max_env_steps == 500
    assert args.use_teleop is False
    with pytest.raises(ValueError, match="use_sim"):
        graph_args_from_strings("train", {"use_sim": "maybe"})
    with pytest.raises(ValueError, match="YAML list"):
        graph_args_from_strings("train", {"use_sim": "true", "robot_ip": "auto", "camera_names": "front"})
    with pytest.raises(ValueError, match="not GraphArgs fields"):
        graph_args_from_strings("train", {"no_such_argument": "1"})


def test_launch_arguments_cover_the_required_ones_and_feed_graph_args():
    fields = {f.name for f in dataclasses.fields(graph.GraphArgs)}
    required = {"task", "robot_ip", "camera_serials", "config_file", "run_dir", "use_sim", "namespace"}
    for name in ("train_real.launch.py", "deploy.launch.py"):
        args = _launch_args(LAUNCH / name)
        assert required <= set(args), f"{name} lacks {required - set(args)}"
        assert set(args) <= fields, f"{name} declares arguments the graph does not know: {set(args) - fields}"
    assert {"checkpoint", "onnx", "episodes"} <= set(_launch_args(LAUNCH / "deploy.launch.py"))


def test_every_executable_is_installed_and_importable():
    scripts = _console_scripts()
    assert set(graph.EXECUTABLES) <= set(scripts)
    for exe in graph.EXECUTABLES:
        mod = importlib.import_module(f"mentor.{exe}")
        assert callable(mod.main), f"mentor.{exe} has no main()"
        assert scripts[exe] == f"mentor.{exe}:main"


def test_setup_installs_launch_and_config_dirs():
    text = (PKG / "setup.py").read_text()
    assert '"launch/*.launch.py"' in text and '"config/*.yaml"' in text
    link = PKG / "launch"
    assert link.resolve() == LAUNCH.resolve(), "ros2_ws/src/mentor/launch must point at the top-level launch/"
    assert (PKG / "resource" / "mentor").exists() and (PKG / "package.xml").exists()
    xml = (PKG / "package.xml").read_text()
    assert "<build_type>ament_python</build_type>" in xml and "<name>mentor</name>" in xml


@pytest.mark.parametrize("mode,use_sim", [("train", True), ("train", False), ("deploy", True), ("deploy", False),
                                          ("record", True), ("record", False)])
def test_graph_parameters_match_node_configs_and_config_files(tmp_path, mode, use_sim):
    args = graph.GraphArgs(mode=mode, use_sim=use_sim, run_dir=str(tmp_path),
                           robot_ip="auto" if use_sim else "10.0.0.2", checkpoint="x.pt" if mode == "deploy" else "",
                           camera_names=["front", "wrist"], use_teleop=mode == "record",
                           use_expert=mode == "record" and use_sim)
    assert graph.default_config_file(args).is_file()
    nodes = graph.build_graph(args)
    names = {n.executable for n in nodes}
    assert ("learner_node" in names) == (mode != "deploy")
    assert ("expert_node" in names) == (mode == "record" and use_sim)
    assert ("sim_world_node" in names) == use_sim and ("camera_node" in names) != use_sim
    for node in nodes:
        unknown = set(node.parameters) - _known_params(node.executable)
        assert not unknown, f"{node.name}: parameters {unknown} are not declared by the node"
        path = graph.write_params_yaml(node, tmp_path / "params")
        assert graph.load_params_file(path)[node.name] == node.parameters


def test_config_files_name_only_known_nodes_and_parameters():
    for path in sorted((PKG / "config").glob("*.yaml")):
        for section, params in graph.load_params_file(path).items():
            exe = re.sub(r"^camera_.*", "camera_node", section)
            exe = exe if exe.endswith("_node") else f"{exe}_node"
            assert exe in NODE_CONFIGS, f"{path.name}: unknown node section {section}"
            unknown = set(params) - _known_params(exe)
            assert not unknown, f"{path.name} [{section}] sets unknown parameters {unknown}"


def test_runner_command_line(tmp_path):
    from mentor.runner import node_command, parse_args
    a, g = parse_args(["train", "--run-dir", str(tmp_path), "--steps", "50", "--namespace", "r1", "--cameras", "front"])
    assert (g.mode, g.max_env_steps, g.use_sim, g.source, a.network) == ("train", 50, True, "r1", False)
    node = next(n for n in graph.build_graph(g) if n.name == "policy")
    cmd = node_command(node, tmp_path / "p.yaml")
    assert cmd[1:4] == ["-u", "-m", "mentor.policy_node"] and "__ns:=/r1" in cmd and "__node:=policy" in cmd
    with pytest.raises(SystemExit):
        parse_args(["fly", "--run-dir", "x"])
    with pytest.raises(ValueError, match="deploy needs a checkpoint or an onnx"):
        parse_args(["deploy", "--run-dir", str(tmp_path)])


@pytest.mark.parametrize("name,mode", [("train_real.launch.py", "train"), ("deploy.launch.py", "deploy")])
def test_sim_launch_never_addresses_a_real_arm(name, mode):
    """use_sim:=true with the launch defaults picks franky-sim's loopback address; a sim graph given a
    robot's FCI address is refused; a real graph must be given its address (no default robot IP)."""
    from mentor.launch_support import graph_args_from_strings

    defaults = _launch_args(LAUNCH / name)
    assert defaults["robot_ip"] == "auto"
    extra = {"checkpoint": "/tmp/unused.pt"} if mode == "deploy" else {}
    sim = graph_args_from_strings(mode, {**defaults, **extra, "use_sim": "true"})
    assert sim.robot_ip == "auto" and sim.use_sim
    robot = next(s for s in graph.build_graph(sim) if s.executable == "robot_node")
    assert robot.parameters["robot_ip"] == "auto"
    with pytest.raises(ValueError, match="not a loopback address"):
        graph_args_from_strings(mode, {**defaults, **extra, "use_sim": "true", "robot_ip": "172.16.0.2"})
    with pytest.raises(ValueError, match="robot_ip 'auto' only works with use_sim"):
        graph_args_from_strings(mode, {**defaults, **extra, "use_sim": "false"})
    assert graph_args_from_strings(mode, {**defaults, **extra, "use_sim": "true", "robot_ip": "127.0.0.5"}).robot_ip


def test_robot_node_config_refuses_a_real_address_in_sim():
    """The robot node checks for itself (a parameter file can bypass the launch arguments)."""
    from mentor.robot_node import RobotNodeConfig

    assert RobotNodeConfig(use_sim=True, robot_ip="127.0.0.9").robot_ip == "127.0.0.9"
    with pytest.raises(ValueError, match="not a loopback address"):
        RobotNodeConfig(use_sim=True, robot_ip="172.16.0.2")
    with pytest.raises(ValueError, match="FCI address"):
        RobotNodeConfig(use_sim=False, robot_ip="auto")
    assert RobotNodeConfig(use_sim=False, robot_ip="172.16.0.2").robot_ip == "172.16.0.2"


def test_every_node_exit_ends_the_launch_and_a_failure_is_an_error():
    """ros2 launch once kept half a graph running when a non-primary node died, and exited 0 when the
    deploy policy failed. launch turns an exception in an exit handler into a shutdown + return code 1."""
    from types import SimpleNamespace

    from mentor.launch_support import node_exit_handler

    running, stopping = SimpleNamespace(is_shutdown=False), SimpleNamespace(is_shutdown=True)
    shutdown = lambda reason: ["shutdown: " + reason]  # noqa: E731 - stands for the EmitEvent(Shutdown) actions
    policy, robot = node_exit_handler("policy", True, shutdown), node_exit_handler("robot", False, shutdown)
    assert policy(SimpleNamespace(returncode=0), running) == ["shutdown: policy finished"]
    with pytest.raises(RuntimeError, match="node policy exited with code 3"):
        policy(SimpleNamespace(returncode=3), running)
    with pytest.raises(RuntimeError, match="node robot exited with code 0 while the graph was running"):
        robot(SimpleNamespace(returncode=0), running)
    with pytest.raises(RuntimeError, match="code -9"):
        robot(SimpleNamespace(returncode=-9), running)
    assert robot(SimpleNamespace(returncode=-2), stopping) is None  # exits during a shutdown are expected
    assert policy(SimpleNamespace(returncode=1), stopping) is None


def test_dds_transport_is_reported_and_shared_memory_warned_about(tmp_path):
    """An inherited FASTDDS_DEFAULT_PROFILES_FILE once silently put localhost graphs back on shared memory."""
    from mentor.graph import dds_transport, node_dds_env, transport_warning

    ours = {**node_dds_env(True, {}), "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert dds_transport(ours) == (dds_transport(ours)[0], False) and transport_warning(ours) is None
    assert "UDPV4" in dds_transport(ours)[0] and transport_warning(node_dds_env(False, {})) is None
    shm_profile = tmp_path / "shm.xml"
    shm_profile.write_text('<dds><profiles><transport_descriptors><transport_descriptor><transport_id>s</transport_id>'
                           '<type>SHM</type></transport_descriptor></transport_descriptors></profiles></dds>')
    inherited = {"FASTDDS_DEFAULT_PROFILES_FILE": str(shm_profile)}
    assert node_dds_env(True, inherited) == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}  # the user's choice kept
    assert dds_transport(inherited)[1] and "shared memory is active" in transport_warning(inherited)
    assert dds_transport({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"})[1]
    assert not dds_transport({"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"})[1]
    assert dds_transport({"FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "missing.xml")})[1]  # unreadable: warned
    assert not dds_transport({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})[1]


def test_demo_and_seeding_arguments_reach_the_learner(tmp_path):
    from mentor.launch_support import graph_args_from_strings
    from mentor.runner import parse_args
    args = graph_args_from_strings("train", {"use_sim": "true", "robot_ip": "auto", "demo_ratio": "0.25",
                                             "demo_dirs": "['/data/demos']",
                                             "seed_topk_from": "['/runs/a/learner/topk']"})
    learner = next(n for n in graph.build_graph(args) if n.name == "learner").parameters
    assert (learner["demo_ratio"], learner["demo_dirs"], learner["seed_topk_from"], learner["seed_replay_from"]) == (
        0.25, ["/data/demos"], ["/runs/a/learner/topk"], [])
    _, cli = parse_args(["train", "--use-sim", "--run-dir", str(tmp_path), "--demo-dir", "/d1", "--demo-dir",
                         "/d2", "--seed-replay-from", "/runs/a/learner/replay", "--demo-ratio", "0"])
    assert cli.demo_dirs == ["/d1", "/d2"] and cli.seed_replay_from == ["/runs/a/learner/replay"]
    assert cli.demo_ratio == 0
    with pytest.raises(ValueError, match="demo_ratio"):
        graph.GraphArgs(use_sim=True, robot_ip="auto", demo_ratio=2.0)


def test_record_mode_builds_a_storing_graph_that_someone_drives(tmp_path):
    """record: the learner stores and exits after the episodes (no updates), the policy holds still unless
    teleop or the sim expert drives; nobody to drive, or the expert on a real arm, is refused."""
    from mentor.runner import parse_args

    _, g = parse_args(["record", "--use-sim", "--run-dir", str(tmp_path), "--episodes", "7", "--expert"])
    nodes = {n.name: n for n in graph.build_graph(g)}
    assert nodes["learner"].primary and nodes["learner"].parameters["learn"] is False
    assert nodes["learner"].parameters["max_episodes"] == 7 and nodes["episode"].parameters["max_episodes"] == 7
    assert nodes["policy"].parameters["mode"] == "record" and nodes["policy"].parameters["eval_every_episodes"] == 0
    assert nodes["expert"].parameters["takeover_from_step"] == 0 and "teleop" not in nodes
    _, t = parse_args(["train", "--use-sim", "--run-dir", str(tmp_path), "--expert", "--expert-from-step", "5",
                       "--expert-steps", "3"])
    expert = next(n for n in graph.build_graph(t) if n.name == "expert").parameters
    assert (expert["takeover_from_step"], expert["takeover_steps"]) == (5, 3)
    with pytest.raises(ValueError, match="record needs someone to drive"):
        parse_args(["record", "--use-sim", "--run-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="use_expert needs use_sim"):
        graph.GraphArgs(mode="record", use_sim=False, robot_ip="172.16.0.2", use_expert=True)
    from mentor.expert_node import ExpertNodeConfig
    with pytest.raises(ValueError, match="sim only"):
        ExpertNodeConfig(use_sim=False)


def test_record_policy_holds_still_whatever_it_sees():
    from mentor.policy_config import PolicyNodeConfig
    from mentor.policy_io import make_policy
    from mentor_policy.specs import EnvSpec

    spec = EnvSpec(frame_channels=3, image_size=(84, 84), proprio_dim=4, action_dim=3)
    policy = make_policy(PolicyNodeConfig(mode="record"), spec, {})
    assert policy.in_channels == 3 * 3  # the tiny preset's frame stack of 3 (as the learner's)
    image = np.random.default_rng(0).integers(0, 255, (9, 84, 84), dtype=np.uint8)
    action = policy.act(image, np.ones(4, np.float32), explore=True, step=10)
    assert action.dtype == np.float32 and np.array_equal(action, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="train, deploy or record"):
        PolicyNodeConfig(mode="fly")
