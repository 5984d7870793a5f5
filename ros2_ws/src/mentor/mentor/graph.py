"""The ONE description of the MENTOR node graph, used by the launch files and by ``mentor-run``.

:func:`build_graph` turns :class:`GraphArgs` (what a user chooses: task, sim or real, cameras,
run directory, ...) into a list of :class:`NodeSpec` (executable, node name, namespace,
parameters, remappings). ``launch/*.launch.py`` wrap each spec in a ``launch_ros.actions.Node``;
:mod:`mentor.runner` starts each as ``python -m mentor.<module> --ros-args ...``.

Parameter precedence (lowest first): node defaults (the node's config dataclass) < the config YAML
file (``config_file``, ``ros__parameters`` per node name or ``/**``) < values derived from
GraphArgs here (so an explicit launch argument always wins).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from robot_envs.netaddr import check_sim_address

#: node executables: each is a console script and the module ``mentor.<executable>`` (``python -m``)
EXECUTABLES = ("sim_world_node", "camera_node", "robot_node", "episode_node", "policy_node", "learner_node",
               "teleop_node", "expert_node", "recorder_node")
#: train: actor + learner; deploy: evaluate a policy; record: an operator (teleop) or, in sim, the scripted
#: expert drives every episode and the learner only stores them (its demos/ directory is the demo store)
MODES = ("train", "deploy", "record")
#: the nodes one host runs: the whole graph, the robots' side (world/cameras, robot, episode, policy) or the learner
SIDES = ("all", "robot", "learner")


@dataclass
class GraphArgs:
    """Everything a user picks when starting the graph (launch arguments / mentor-run flags)."""

    mode: str = "train"  # "train" (actor + learner), "deploy" (evaluation, no learner) or "record" (demonstrations)
    task: str = "reach"  # task name registered in robot_envs.tasks
    task_config: str = ""  # optional YAML file overriding the task's config ("" = task defaults)
    use_sim: bool = True  # True: franky-sim + MuJoCo cameras in sim_world_node; False: real arm + RealSense
    namespace: str = ""  # ROS namespace of this robot's graph ("" = root); also the transition source name
    # Franka FCI address (real); sim: loopback address franky-sim serves on ("auto" = a free one)
    robot_ip: str = "auto"
    camera_names: list[str] = field(default_factory=list)  # camera names, policy channel order ([] = the task's)
    camera_serials: list[str] = field(default_factory=list)  # RealSense serials, same order ("" = the only one)
    run_dir: str = "runs/default"  # output directory (params, learner state, outbox, videos, episodes.csv)
    agent_config: str = "tiny"  # mentor_policy preset name or YAML path
    agent_overrides: str = ""  # YAML mapping of AgentConfig overrides (same for policy and learner)
    control_hz: float = 10.0  # policy control rate [Hz]
    max_env_steps: int = 0  # train: learner stops after this many env steps (0 = never)
    config_file: str = ""  # parameter YAML (ros__parameters per node) merged under the derived values
    checkpoint: str = ""  # deploy: learner checkpoint / policy weights file (.pt)
    onnx: str = ""  # deploy: ONNX policy file (takes precedence over checkpoint)
    episodes: int = 10  # deploy: number of evaluation episodes; record: number of demonstrations
    use_teleop: bool = False  # start teleop_node (keyboard/joystick/SpaceMouse)
    use_expert: bool = False  # sim: start expert_node, the scripted operator (demonstrations / interventions)
    expert_from_step: int = 0  # expert_node takes over at this step of each episode (0 = whole episodes)
    expert_steps: int = 0  # expert_node drives this many steps, then lets go (0 = to the episode's end)
    expert_label_every_s: float = 0.0  # expert_node also labels success/failure this often [s] (0 = never)
    realtime_ignore: bool = False  # franky RealtimeConfig.Ignore (simulator / non-RT kernels only)
    seed: int = 0  # seed for scene randomisation and reset noise
    eval_every_episodes: int = 20  # train: an evaluation block after every N training episodes (0 = none)
    eval_episodes: int = 5  # train: deterministic episodes per evaluation block (best.pt from the best block)
    demo_ratio: float = 0.5  # train: share of each batch from the demonstration/intervention buffer once it has data
    demo_dirs: list[str] = field(default_factory=list)  # train: demo stores loaded into the demonstration buffer
    seed_replay_from: list[str] = field(default_factory=list)  # train: earlier runs' learner/replay dirs to copy in
    seed_topk_from: list[str] = field(default_factory=list)  # train: earlier runs' learner/topk dirs to offer
    label_frames_dir: str = ""  # store every camera's frame at each success/failure label here ("" = off)
    bag_dir: str = ""  # record each robot's topics into MCAP files here (recorder_node; "" = off)
    robots: int = 1  # sim robots, each with its own world, robot, episode and policy nodes; one learner for all
    side: str = "all"  # which nodes this host runs: all, robot (the robots' nodes) or learner (the learner only)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.task:
            raise ValueError("task must be a non-empty task name")
        if self.control_hz <= 0:
            raise ValueError(f"control_hz must be > 0, got {self.control_hz}")
        if not self.camera_names:
            from robot_envs.tasks import task_config
            self.camera_names = list(task_config(self.task, self.task_config or None).cameras)
        if len(set(self.camera_names)) != len(self.camera_names):
            raise ValueError(f"camera_names must be non-empty and unique, got {self.camera_names}")
        if self.camera_serials and len(self.camera_serials) != len(self.camera_names):
            raise ValueError(f"{len(self.camera_serials)} camera_serials for {len(self.camera_names)} cameras")
        if self.namespace and not all(p.isidentifier() for p in self.namespace.strip("/").split("/")):
            raise ValueError(f"namespace {self.namespace!r} is not a valid ROS namespace")
        if self.mode == "deploy" and not (self.onnx or self.checkpoint):
            raise ValueError("deploy needs a checkpoint or an onnx file")
        if self.robot_ip == "auto" and not self.use_sim:
            raise ValueError("robot_ip 'auto' only works with use_sim (franky-sim picks a free loopback address)")
        if self.use_sim and self.robot_ip != "auto":
            check_sim_address(self.robot_ip)  # a sim graph never addresses a real arm
        if self.use_expert and not self.use_sim:
            raise ValueError("use_expert needs use_sim: the scripted expert reads sim object poses (use teleop)")
        if self.mode == "record" and not (self.use_teleop or self.use_expert):
            raise ValueError("record needs someone to drive: use_teleop (an operator) or, in sim, use_expert")
        if self.expert_from_step < 0 or self.expert_steps < 0:
            raise ValueError("expert_from_step and expert_steps must be >= 0")
        if self.robots < 1 or (self.robots > 1 and not self.use_sim):
            raise ValueError(f"robots must be >= 1, and > 1 only with use_sim (got {self.robots}); real robots: one "
                             "graph per robot PC with side robot, one learner with side learner")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {self.side!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if not 0.0 <= self.demo_ratio <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if self.eval_every_episodes < 0 or self.eval_episodes < 1:
            raise ValueError(f"eval_every_episodes must be >= 0 and eval_episodes >= 1, got "
                             f"{self.eval_every_episodes}, {self.eval_episodes}")

    @property
    def source(self) -> str:
        """Transition source name: the namespace without slashes, or 'robot' for the root namespace."""
        return self.namespace.strip("/").replace("/", "_") or "robot"


@dataclass
class NodeSpec:
    """One node of the graph, independent of how it is started."""

    name: str  # node name
    executable: str  # console script = module name in the mentor package (one of EXECUTABLES)
    namespace: str  # ROS namespace ("" = root)
    parameters: dict = field(default_factory=dict)  # parameter name -> value (merged, final)
    remappings: dict = field(default_factory=dict)  # from -> to topic names
    primary: bool = False  # the graph is done when this node exits (learner in train, policy in deploy)
    label: str = ""  # unique name of the process in its graph (logs, params files); "" = the node name

    def __post_init__(self) -> None:
        self.label = self.label or self.name

    @property
    def module(self) -> str:
        if self.executable not in EXECUTABLES:
            raise ValueError(f"unknown node executable {self.executable!r}; known: {EXECUTABLES}")
        return "mentor." + self.executable

    @property
    def qualified_name(self) -> str:
        """``/<namespace>/<name>``, as ROS lists the node (``/<name>`` in the root namespace)."""
        ns = self.namespace.strip("/")
        return f"/{ns}/{self.name}" if ns else f"/{self.name}"


#: Fast DDS settings a user may have chosen; when any is set, :func:`node_dds_env` leaves transports alone.
USER_DDS_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")
#: Fast DDS profile of localhost-only graphs: UDP bound to the loopback interface, no shared memory.
LOCALHOST_UDP_PROFILE = "fastdds_udp_localhost.xml"
#: Fast DDS profile of graphs that reach other hosts: UDP datagrams below the Ethernet MTU, prompt repair.
NETWORK_UDP_PROFILE = "fastdds_udp_network.xml"


def node_dds_env(localhost_only: bool = True, environ: dict[str, str] | None = None) -> dict[str, str]:
    """DDS environment variables for node processes: UDP transport, no shared memory.

    Why: Fast DDS (the default RMW) moves same-host data over shared memory, and a process killed with
    SIGKILL leaves its segments and port locks behind; a restarted subscriber can then match its
    publishers yet receive nothing (eProsima/Fast-DDS issues 2811, 5053, 5469). We saw it once: a
    policy node restarted after kill -9 never got ``episode/status`` nor ``learner/ack``. Any node of
    this graph must survive kill -9 and a restart, so the nodes talk UDP.

    ``localhost_only``: UDP on the loopback interface only (``config/fastdds_udp_localhost.xml``).
    The discovery range is then SUBNET, because rmw_fastrtps's LOCALHOST range installs its own
    transports, shared memory included; the profile alone keeps the traffic on this machine. Unicast
    discovery over loopback takes about 2.5 s longer than over shared memory. Otherwise: UDPv4 on every
    interface with datagrams below the Ethernet MTU (``config/fastdds_udp_network.xml``: a large message
    such as the weights is then fragmented by DDS, and a fragment lost on a lossy link is resent alone
    instead of the 64 KB IP-fragmented datagram it was part of), discovery range SUBNET (also over an
    inherited ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``: the graph was asked to reach other hosts). A user's
    own Fast DDS profile or transport choice (:data:`USER_DDS_VARIABLES` in ``environ``, default
    ``os.environ``) is kept: then only the discovery range is set.
    """
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in USER_DDS_VARIABLES):
        return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST" if localhost_only else "SUBNET"}
    if localhost_only:
        return {"FASTDDS_DEFAULT_PROFILES_FILE": str(package_config_dir() / LOCALHOST_UDP_PROFILE),
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(package_config_dir() / NETWORK_UDP_PROFILE),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def dds_transport(env: dict[str, str]) -> tuple[str, bool]:
    """(description, shared_memory) of the DDS transport nodes started with ``env`` will use.

    ``shared_memory`` is True when Fast DDS may move data over shared memory (its default transports,
    ``FASTDDS_BUILTIN_TRANSPORTS`` other than a UDP one, or a profile file that keeps the built-in
    transports or declares an SHM transport); a graph then no longer survives ``kill -9`` of a node
    (see :func:`node_dds_env`). A profile is read as XML data, never executed; an unreadable one counts
    as shared memory.
    """
    rmw = env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if rmw != "rmw_fastrtps_cpp":
        return f"RMW {rmw} (transport set by its own configuration, not checked)", False
    builtin = env.get("FASTDDS_BUILTIN_TRANSPORTS", "")
    profile = env.get("FASTDDS_DEFAULT_PROFILES_FILE") or env.get("FASTRTPS_DEFAULT_PROFILES_FILE")
    if profile:
        return _profile_transport(Path(profile))
    if builtin:
        shm = not builtin.upper().startswith("UDP")
        return f"Fast DDS built-in transports {builtin}", shm
    return "Fast DDS default transports (shared memory + UDPv4)", True


def _profile_transport(path: Path) -> tuple[str, bool]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return f"Fast DDS profile {path} (unreadable: {exc})", True
    local = lambda el: el.tag.rsplit("}", 1)[-1]  # noqa: E731 - tag without the XML namespace
    types = [(el.text or "").strip().upper() for el in root.iter() if local(el) == "type"]
    builtin_off = [el for el in root.iter()
                   if local(el) == "useBuiltinTransports" and (el.text or "").strip() == "false"]
    shm = "SHM" in types or not builtin_off
    kinds = "/".join(sorted(set(types))) or "none declared"
    return (f"Fast DDS profile {path} (transports {kinds}, built-in {'off' if builtin_off else 'on'})", shm)


def transport_warning(env: dict[str, str]) -> str | None:
    """A loud warning when nodes started with ``env`` may use shared memory, else None."""
    what, shm = dds_transport(env)
    if not shm:
        return None
    return (f"WARNING: DDS transport: {what}: shared memory is active. A node killed with kill -9 can leave "
            "its restarted peers matched but receiving nothing (the graph then stalls). This graph is meant "
            "to survive kill -9 over UDP: unset FASTDDS_DEFAULT_PROFILES_FILE / FASTDDS_BUILTIN_TRANSPORTS, "
            "or use a profile with only UDP transports and useBuiltinTransports false.")


def package_config_dir() -> Path:
    """The package's config/ directory (source tree or installed share/)."""
    here = Path(__file__).resolve().parent.parent / "config"
    if here.is_dir():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory("mentor")) / "config"
    except (ImportError, LookupError) as exc:
        raise FileNotFoundError("mentor config/ directory not found (source tree or installed share)") from exc


def default_config_file(args: GraphArgs) -> Path:
    """config/<train|deploy>_<sim|real>.yaml shipped with the package (record uses train's)."""
    mode = "train" if args.mode == "record" else args.mode
    return package_config_dir() / f"{mode}_{'sim' if args.use_sim else 'real'}.yaml"


def load_params_file(path: str | os.PathLike) -> dict:
    """A ROS parameter YAML -> {node name or '/**': {param: value}} (namespaces stripped)."""
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of node names to ros__parameters")
    out: dict[str, dict] = {}
    for key, section in data.items():
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters", {}), dict):
            raise ValueError(f"{path}: section {key!r} must contain a ros__parameters mapping")
        name = "/**" if key in ("/**", "**") else str(key).rstrip("/").split("/")[-1]
        out.setdefault(name, {}).update(section.get("ros__parameters", {}))
    return out


def build_graph(args: GraphArgs) -> list[NodeSpec]:
    """The nodes of the graph for ``args``, each with its final parameter dict.

    One robot: its nodes in ``namespace``, the run's files in ``run_dir``. ``robots`` N > 1 (sim): robot
    ``i``'s nodes in ``<namespace>/r<i>`` (transition source ``r<i>``, files in ``run_dir/r<i>``, scene seed
    ``seed + i``) and one learner in ``namespace`` that subscribes to every ``r<i>/transitions`` and whose
    weights and acks every policy reads. ``side`` picks the robot side or the learner side only (hosts).
    """
    run = Path(args.run_dir).expanduser().resolve()
    ns = args.namespace.strip("/")
    nodes: list[NodeSpec] = []
    if args.side in ("all", "robot"):
        if args.robots == 1:
            nodes += _robot_nodes(args, ns, args.source, run, args.seed)
        else:
            learner_ns = f"/{ns}" if ns else ""
            for i in range(args.robots):
                robot = _robot_nodes(args, "/".join(p for p in (ns, f"r{i}") if p), f"r{i}", run / f"r{i}",
                                     args.seed + i, label=f"r{i}_")
                for node in robot:  # weights and acks come from the one learner
                    if node.executable == "policy_node":
                        node.remappings.update({"learner/ack": f"{learner_ns}/learner/ack",
                                                "learner/weights": f"{learner_ns}/learner/weights"})
                nodes += robot
    if args.side in ("all", "learner") and args.mode in ("train", "record"):
        topics = ["transitions"] if args.robots == 1 else [f"r{i}/transitions" for i in range(args.robots)]
        nodes.append(_learner_node(args, ns, run, topics))
    _merge_config_file(nodes, args)
    return nodes


def _robot_nodes(args: GraphArgs, ns: str, source: str, run: Path, seed: int, label: str = "") -> list[NodeSpec]:
    """One robot's nodes (world or cameras, robot, episode, policy, teleop / expert) in namespace ``ns``."""
    common = {"task": args.task, "task_config": args.task_config, "use_sim": args.use_sim}
    nodes: list[NodeSpec] = []
    if args.use_sim:
        nodes.append(NodeSpec("sim_world", "sim_world_node", ns, {
            **common, "hostname": args.robot_ip, "cameras": list(args.camera_names),
            "camera_hz": float(args.control_hz), "seed": seed}))
    else:
        for i, cam in enumerate(args.camera_names):
            serial = args.camera_serials[i] if args.camera_serials else ""
            nodes.append(NodeSpec(f"camera_{cam}", "camera_node", ns, {"camera_name": cam, "serial": serial}))
    nodes.append(NodeSpec("robot", "robot_node", ns, {
        **common, "robot_ip": args.robot_ip, "realtime_ignore": args.realtime_ignore or args.use_sim, "seed": seed}))
    nodes.append(NodeSpec("episode", "episode_node", ns, {
        **common, "run_dir": str(run), "max_episodes": args.episodes if args.mode != "train" else 0,
        "cameras": list(args.camera_names), "use_images": not args.use_sim,
        "label_frames_dir": args.label_frames_dir}))
    policy = {**common, "mode": args.mode, "cameras": list(args.camera_names), "control_hz": float(args.control_hz),
              "agent_config": args.agent_config, "agent_overrides": args.agent_overrides, "source": source,
              "outbox_dir": str(run / "actor" / "outbox"), "videos_dir": str(run / "videos"),
              "summary_path": str(run / "deploy_summary.json")}
    if args.mode == "deploy":
        policy.update(checkpoint=args.checkpoint, onnx=args.onnx)
    elif args.mode == "train":
        policy.update(eval_every_episodes=args.eval_every_episodes, eval_episodes=args.eval_episodes)
    else:
        policy.update(eval_every_episodes=0)
    nodes.append(NodeSpec("policy", "policy_node", ns, policy, primary=args.mode == "deploy"))
    if args.use_teleop:
        nodes.append(NodeSpec("teleop", "teleop_node", ns, {"task": args.task, "task_config": args.task_config}))
    if args.use_expert:
        nodes.append(NodeSpec("expert", "expert_node", ns, {**common, "takeover_from_step": args.expert_from_step,
                                                            "takeover_steps": args.expert_steps,
                                                            "label_every_s": args.expert_label_every_s}))
    if args.bag_dir:
        bags = Path(args.bag_dir).expanduser().resolve()
        nodes.append(NodeSpec("recorder", "recorder_node", ns,
                              {"bag_dir": str(bags), "cameras": list(args.camera_names)}))
    for node in nodes:
        node.label = label + node.name
    return nodes


def _learner_node(args: GraphArgs, ns: str, run: Path, topics: list[str]) -> NodeSpec:
    record = {"learn": False, "max_episodes": args.episodes} if args.mode == "record" else {}
    return NodeSpec("learner", "learner_node", ns, {
        "task": args.task, "task_config": args.task_config, "use_sim": args.use_sim,
        "cameras": list(args.camera_names), "agent_config": args.agent_config, "agent_overrides": args.agent_overrides,
        "learner_dir": str(run / "learner"), "max_env_steps": args.max_env_steps, "transition_topics": topics,
        "demo_ratio": args.demo_ratio, "demo_dirs": list(args.demo_dirs),
        "seed_replay_from": list(args.seed_replay_from), "seed_topk_from": list(args.seed_topk_from), **record},
        primary=True)


def _merge_config_file(nodes: list[NodeSpec], args: GraphArgs) -> None:
    """Put the config file's values under the derived ones (derived values win)."""
    path = Path(args.config_file) if args.config_file else default_config_file(args)
    if args.config_file and not path.is_file():
        raise FileNotFoundError(f"config_file {path} does not exist")
    sections = load_params_file(path) if path.is_file() else {}
    for node in nodes:
        merged = {**sections.get("/**", {}), **sections.get(node.executable, {}), **sections.get(node.name, {})}
        node.parameters = {**merged, **node.parameters}


def write_params_yaml(node: NodeSpec, directory: str | os.PathLike) -> Path:
    """Write ``node``'s parameters as a ROS params file (``<dir>/<label>.yaml``) and return its path."""
    from mentor_policy.fileio import atomic_write_bytes

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = f"/{node.namespace}/{node.name}" if node.namespace else f"/{node.name}"
    path = directory / f"{node.label}.yaml"
    atomic_write_bytes(path, yaml.safe_dump({key: {"ros__parameters": node.parameters}}, sort_keys=True).encode())
    return path
