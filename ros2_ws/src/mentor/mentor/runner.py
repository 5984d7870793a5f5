"""``mentor-run``: start the MENTOR graph without ``ros2 launch`` (one process per node).

    mentor-run train --use-sim --task reach --run-dir runs/x [--steps N] [--agent-config tiny]
    mentor-run deploy --use-sim --task reach --run-dir runs/eval --checkpoint runs/x/learner/checkpoints/best.pt
    mentor-run record --use-sim --task reach --run-dir runs/demos --episodes 10 --expert   (or --teleop)

Training evaluates the policy inside the run (``--eval-every-episodes``, ``--eval-episodes``) and keeps the
best-scoring weights in ``<run_dir>/learner/checkpoints/best.pt`` next to the newest, ``latest.pt``; deploy
takes either (``--checkpoint``). Record stores demonstrations: the operator (``--teleop``) or, in sim, the
task's scripted expert (``--expert``) drives each episode while the arm otherwise holds still; the learner
stores them without updating and exits after ``--episodes``; ``<run_dir>/learner/demos`` is the demo store
that ``mentor-run train --demo-dir`` loads.

Each node of :func:`mentor.graph.build_graph` runs as
``python -m mentor.<module> --ros-args -r __ns:=/<ns> -r __node:=<name> --params-file <run_dir>/params/<name>.yaml``.
The runner prints the learner's progress lines, stops every node on Ctrl-C or when the primary
node (learner in train and record, policy in deploy) exits, and restarts nothing: if any other node dies the
whole graph is stopped and the exit code says which node failed. It refuses to start (exit code 4)
when nodes of the same names already run in the ROS domain: two graphs would share topics and
services (one graph's episode node steering the other's policy; two robot nodes on one arm).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from .graph import (
    MODES,
    SIDES,
    GraphArgs,
    NodeSpec,
    build_graph,
    dds_transport,
    node_dds_env,
    transport_warning,
    write_params_yaml,
)
from .progress import ProgressDisplay, TrainingProgress


def node_command(node: NodeSpec, params_file: Path) -> list[str]:
    """The command line that starts ``node`` with the current Python interpreter."""
    cmd = [sys.executable, "-u", "-m", node.module, "--ros-args", "-r", f"__node:={node.name}",
           "--params-file", str(params_file)]
    if node.namespace:
        cmd[5:5] = ["-r", f"__ns:=/{node.namespace}"]
    for src, dst in node.remappings.items():
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def node_env(domain_id: int | None = None, localhost_only: bool = True) -> dict[str, str]:
    """Environment of a node process: headless rendering, DDS transport and discovery scope, import paths."""
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(node_dds_env(localhost_only, env))  # UDP, not shared memory: nodes survive kill -9 and restart
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    pkg = str(Path(__file__).resolve().parent.parent)
    repo = str(Path(pkg).parents[2])  # repository root when running from a checkout
    extra = [p for p in (pkg, repo) if p not in env.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(extra + [p for p in [env.get("PYTHONPATH", "")] if p])
    return env


class GraphProcesses:
    """Starts, watches and stops the processes of one graph (also used by the graph tests).

    Node logs go to ``<run_dir>/logs/<label>.log`` (appended across restarts); ``echo`` names nodes whose
    output is also handed to ``on_line(label, line)`` (default: copied to this process's stdout).
    ``prefix`` goes before every node's command (e.g. ``ip netns exec <ns>``: the node runs on another host).
    """

    def __init__(self, nodes: list[NodeSpec], run_dir: str | os.PathLike, env: dict[str, str] | None = None,
                 echo: tuple[str, ...] = (), on_line: Callable[[str, str], None] | None = None,
                 prefix: tuple[str, ...] | list[str] = ()) -> None:
        self.nodes = {n.label: n for n in nodes}  # by label: unique even when robots share node names
        if len(self.nodes) != len(nodes):
            raise ValueError(f"node labels must be unique in a graph, got {[n.label for n in nodes]}")
        self.run_dir = Path(run_dir)
        self.env = env if env is not None else node_env()
        self.echo = echo
        self.prefix = list(prefix)
        self.on_line = on_line or (lambda name, line: (sys.stdout.write(f"[{name}] {line}"), sys.stdout.flush()))
        self.procs: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self.params_files = {n.label: write_params_yaml(n, self.run_dir / "params") for n in nodes}
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def start(self, name: str) -> subprocess.Popen:
        """Start (or restart) node ``name``; its stdout+stderr go to its log file."""
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"node {name} is already running (pid {self.procs[name].pid})")
        proc = subprocess.Popen(self.prefix + node_command(self.nodes[name], self.params_files[name]), env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        t = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
        t.start()
        self._threads.append(t)
        return proc

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        with open(self.log_path(name), "ab") as log:
            for line in iter(proc.stdout.readline, b""):
                log.write(line)
                log.flush()
                if name in self.echo:
                    self.on_line(name, line.decode(errors="replace"))

    def start_all(self) -> None:
        for name in self.nodes:
            self.start(name)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout_s: float = 10.0) -> int | None:
        """Send ``sig`` to node ``name`` and wait for it to exit; returns its exit code."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
        return proc.returncode

    def exited(self) -> dict[str, int]:
        """Nodes that have exited and their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop_all(self, timeout_s: float = 15.0) -> dict[str, int | None]:
        """SIGINT every node (clean shutdown: checkpoints, outbox), SIGKILL what does not exit in time."""
        for name, proc in self.procs.items():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"mentor-run: {name} did not stop within {timeout_s:.0f} s: killing it", file=sys.stderr)
                self.kill(name)
        for t in self._threads:
            t.join(timeout=2.0)
        return {n: p.returncode for n, p in self.procs.items()}

    def read_log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""


def nodes_already_running(nodes: list[NodeSpec], env: dict[str, str], wait_s: float = 4.0) -> list[str]:
    """Names of ``nodes`` that some other process already runs in the ROS domain ``env`` points at.

    A second graph with the same names in the same domain would share its topics and services: its
    episode node would drive the first graph's policy, two robot nodes could command one arm.
    """
    out = subprocess.run([sys.executable, "-m", "mentor.graph_probe", str(wait_s)], env=env, capture_output=True,
                         text=True, timeout=60 + wait_s)
    if out.returncode != 0:
        raise RuntimeError(f"could not list the ROS nodes of this domain: {out.stderr.strip()[-500:]}")
    visible = set(json.loads(out.stdout.strip().splitlines()[-1]))
    return sorted(n.qualified_name for n in nodes if n.qualified_name in visible)


def run_graph(nodes: list[NodeSpec], run_dir: Path, domain_id: int | None, localhost_only: bool,
              target_steps: int = 0) -> int:
    """Run until the primary node exits, another node dies, or Ctrl-C. Returns an exit code.

    With a learner (train, record) its lines feed a status display (:mod:`mentor.progress`) against
    ``target_steps`` env steps (0 = none); the other nodes' output stays in their log files."""
    primary = next((n.label for n in nodes if n.primary), None)
    env = node_env(domain_id, localhost_only)
    taken = nodes_already_running(nodes, env)
    if taken:
        print(f"mentor-run: nodes {taken} already run in ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}: another "
              "MENTOR graph is up. Stop it, or give this one its own --domain-id or --namespace.", file=sys.stderr)
        return 4
    display = ProgressDisplay(TrainingProgress(target_steps)) if primary == "learner" else None
    graph = GraphProcesses(nodes, run_dir, env, echo=tuple(n.label for n in nodes if n.primary),
                           on_line=display.line if display else None)
    say = display.write if display is not None else print  # above the status bar while it is shown
    print(f"mentor-run: DDS transport: {dds_transport(env)[0]}")
    warning = transport_warning(env)
    if warning:
        print(f"mentor-run: {warning}", file=sys.stderr)
    print(f"mentor-run: starting {', '.join(graph.nodes)} (run dir {run_dir}, logs in {run_dir / 'logs'})")
    graph.start_all()
    code = 0
    try:
        while True:
            time.sleep(0.5)
            if display is not None:
                display.refresh()
            exited = graph.exited()
            if primary in exited:
                code = exited[primary]
                say(f"mentor-run: {primary} finished (exit code {code}); stopping the graph")
                break
            dead = {n: c for n, c in exited.items() if n != primary}
            if dead:
                print(f"mentor-run: node(s) {dead} exited unexpectedly; stopping the graph (see "
                      f"{run_dir / 'logs'}). Nothing is restarted automatically.", file=sys.stderr)
                code = 3
                break
    except KeyboardInterrupt:
        say("mentor-run: interrupted (Ctrl-C / SIGTERM), stopping the graph")
    finally:
        codes = graph.stop_all()
        if display is not None:
            display.close()
        print(f"mentor-run: exit codes {codes}")
    return code


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, GraphArgs]:
    p = argparse.ArgumentParser(prog="mentor-run", description=__doc__.split("\n\n")[0], epilog=(
        "Deploy a training run's weights: mentor-run deploy --run-dir runs/eval --checkpoint "
        "runs/x/learner/checkpoints/best.pt (the best evaluation block) or .../latest.pt (the newest)."))
    p.add_argument("mode", choices=list(MODES),
                   help="train: MENTOR through the graph; deploy: evaluate a checkpoint or ONNX policy; record: "
                        "store demonstrations driven by --teleop (an operator) or --expert (sim)")
    p.add_argument("--task", default="reach")
    p.add_argument("--task-config", default="", help="YAML file overriding the task's config")
    sim = p.add_mutually_exclusive_group()
    sim.add_argument("--use-sim", dest="use_sim", action="store_true", default=True,
                     help="simulated FR3 (franky-sim) and MuJoCo cameras (default)")
    sim.add_argument("--real", dest="use_sim", action="store_false", help="real Franka + RealSense cameras")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--steps", type=int, default=0, help="train: stop after this many env steps (0 = never)")
    p.add_argument("--agent-config", default="tiny", help="tiny | paper | path to a YAML file")
    p.add_argument("--agent-overrides", default="", help="YAML mapping of AgentConfig overrides")
    p.add_argument("--control-hz", type=float, default=10.0)
    p.add_argument("--namespace", default="")
    p.add_argument("--robot-ip", default="auto", help="Franka address; sim: 'auto' = a free loopback address")
    p.add_argument("--cameras", default="", help="comma-separated camera names (default: the task's)")
    p.add_argument("--camera-serials", default="", help="comma-separated RealSense serials (real)")
    p.add_argument("--config-file", default="", help="ROS parameter YAML merged under the derived values")
    p.add_argument("--checkpoint", default="",
                   help="deploy: learner checkpoint, <train run>/learner/checkpoints/best.pt (the best evaluation "
                        "block's weights) or latest.pt (the newest), or a bare policy state; the policy is built "
                        "from the agent config it records")
    p.add_argument("--onnx", default="")
    p.add_argument("--episodes", type=int, default=10, help="deploy: evaluation episodes; record: demonstrations")
    p.add_argument("--eval-every-episodes", type=int, default=20,
                   help="train: a block of deterministic evaluation episodes after every N training episodes "
                        "(0 = no evaluation)")
    p.add_argument("--eval-episodes", type=int, default=5, help="train: episodes per evaluation block")
    p.add_argument("--teleop", action="store_true", help="start the teleop node")
    p.add_argument("--expert", action="store_true",
                   help="sim: the task's scripted expert drives (record: whole episodes; train: interventions from "
                        "--expert-from-step)")
    p.add_argument("--expert-from-step", type=int, default=0,
                   help="the expert takes over at this step of each episode (0 = from the start)")
    p.add_argument("--expert-steps", type=int, default=0, help="steps the expert drives (0 = to the episode's end)")
    p.add_argument("--expert-label-every", type=float, default=0.0, metavar="S",
                   help="sim: the expert also labels the frame success/failure (the sim's own flag) every S seconds, "
                        "for --label-frames-dir (0 = never)")
    p.add_argument("--label-frames-dir", default="",
                   help="store every camera's frame at each success/failure label here, for the success classifier")
    p.add_argument("--demo-ratio", type=float, default=0.5,
                   help="train: share of each batch from demonstrations and interventions once there are any (0 = off)")
    p.add_argument("--demo-dir", action="append", default=[], metavar="DIR",
                   help="train: a demo store (episode files) for the demonstration buffer; repeatable")
    p.add_argument("--seed-replay-from", action="append", default=[], metavar="DIR",
                   help="train: an earlier run's learner/replay to copy into this run's replay; repeatable")
    p.add_argument("--seed-topk-from", action="append", default=[], metavar="DIR",
                   help="train: an earlier run's learner/topk to offer to this run's top-K store; repeatable")
    p.add_argument("--bag", default="", metavar="DIR",
                   help="record the graph's topics (images, actions, poses, episode events, timing) into MCAP files "
                        "in DIR (ros2 bag's format)")
    p.add_argument("--robots", type=int, default=1,
                   help="sim: this many robots (namespaces r0..r<N-1>, each its own world, robot, episode and policy "
                        "nodes) feeding one learner")
    p.add_argument("--side", choices=list(SIDES), default="all",
                   help="run only the robot side or only the learner side of the graph (actor and learner on "
                        "different hosts: use --network and the same --domain-id on both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: inherited)")
    p.add_argument("--network", action="store_true",
                   help="discover peers on the network (default: localhost only)")
    a = p.parse_args(argv)
    g = GraphArgs(mode=a.mode, task=a.task, task_config=a.task_config, use_sim=a.use_sim, namespace=a.namespace,
                  robot_ip=a.robot_ip, camera_names=[c for c in a.cameras.split(",") if c],
                  camera_serials=[s for s in a.camera_serials.split(",") if s], run_dir=a.run_dir,
                  agent_config=a.agent_config, agent_overrides=a.agent_overrides, control_hz=a.control_hz,
                  max_env_steps=a.steps, config_file=a.config_file, checkpoint=a.checkpoint, onnx=a.onnx,
                  episodes=a.episodes, use_teleop=a.teleop, use_expert=a.expert, expert_from_step=a.expert_from_step,
                  expert_steps=a.expert_steps, expert_label_every_s=a.expert_label_every, seed=a.seed,
                  eval_every_episodes=a.eval_every_episodes,
                  eval_episodes=a.eval_episodes, demo_ratio=a.demo_ratio, demo_dirs=a.demo_dir,
                  seed_replay_from=a.seed_replay_from, seed_topk_from=a.seed_topk_from,
                  label_frames_dir=a.label_frames_dir, robots=a.robots, side=a.side,
                  bag_dir=a.bag)
    return a, g


def _use_source_tree() -> None:
    """Running from a repository checkout: make its libraries importable (as node_env does for nodes)."""
    repo = Path(__file__).resolve().parents[4]
    if (repo / "robot_envs").is_dir() and str(repo) not in sys.path:
        sys.path.insert(0, str(repo))


def _raise_keyboard_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    _use_source_tree()
    # SIGTERM (systemd, `timeout`, docker stop) stops the graph like Ctrl-C: every node gets SIGINT
    # and may checkpoint; without this the nodes would outlive the runner.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    a, g = parse_args(argv)
    run_dir = Path(g.run_dir).expanduser().resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    code = run_graph(build_graph(g), run_dir, a.domain_id, not a.network, target_steps=g.max_env_steps)
    if g.mode == "train":
        _print_report(run_dir, g)
    elif g.mode == "record":
        _print_demo_store(run_dir)
    return code


def _print_demo_store(run_dir: Path) -> None:
    """Where a record run's demonstrations are and how to train with them."""
    demos = run_dir / "learner" / "demos"
    n = len(list(demos.glob("ep_*.npz"))) if demos.is_dir() else 0
    print(f"mentor-run: {n} demonstration episode(s) in {demos}; train with them: mentor-run train --demo-dir {demos} "
          f"--run-dir <new run>", flush=True)


def _print_report(run_dir: Path, g: GraphArgs) -> None:
    """The end-of-run paragraph and learning curve (mentor.run_report); never fails the run."""
    from .run_report import run_report
    try:
        print(f"mentor-run: {run_report(run_dir, g.task, g.use_sim)}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a report is a courtesy; the run's files are what count
        print(f"mentor-run: no end-of-run report ({type(exc).__name__}: {exc})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
