"""learner_node: durable transition ingest, replay, MENTOR updates, weights, checkpoints.

Every received transition (``transitions`` topics, one per robot) is checked against the ingest
ledger (duplicates dropped, gaps refused and reported), appended to the EpisodeJournal (fsync)
and only then committed and acknowledged on ``learner/ack`` (JSON {source: highest contiguous
seq}, also re-published at ``ack_hz``). An ``is_last`` record finalises the episode into the
ReplayBuffer and offers the agent to the top-K store (``end_episode``). A training thread runs
``utd`` updates per env step after ``num_seed_frames`` (rate-limited by ``max_updates_per_s`` so the
control loop keeps its CPU), publishes weights every ``publish_weights_every`` updates
(``learner/weights``, transient-local), checkpoints atomically every ``checkpoint_every`` updates
and on shutdown, and logs TensorBoard scalars. A restart recovers journal, replay, checkpoint and
top-K store. With ``max_env_steps`` > 0 the node checkpoints and exits once that many env steps
were ingested. With ``learn`` false (``mentor-run record``) it only stores: no updates, and it exits once
``max_episodes`` episodes are stored; the intervened ones in ``demos/`` are the demo store.

Evaluation inside training (the policy runs blocks of deterministic episodes, see
:mod:`mentor.evaluation`): an episode's success is its is_last record's meta ``success`` (older records:
a terminal discount of 0). Evaluation episodes go to TensorBoard as ``eval/success`` and ``eval/return``
and to ``eval.csv``; a complete block as ``eval/block_success`` and a progress line. The states the
learner published are kept in memory for the last ``policy_cache_versions`` versions (plus the ones an
open block acts with); when a block scores at least the best success rate so far, the state of its
weights version is written atomically to ``checkpoints/best.pt`` (with its score, which a restart
reloads).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray
from torch.utils.tensorboard import SummaryWriter

from mentor_policy.agent import MentorAgent
from mentor_policy.checkpoint import (
    CheckpointError,
    non_finite_entries,
    read_best,
    read_latest,
    run_description,
    write_best,
    write_latest,
)
from mentor_policy.config import load_agent_config
from mentor_policy.fileio import atomic_write_text, truncate_torn_line
from mentor_policy.journal import EpisodeJournal
from mentor_policy.mixed_replay import MixedReplay
from mentor_policy.replay import ReplayBuffer, ReplayError, seed_episodes
from mentor_policy.step_record import read_step_header
from robot_envs.tasks import check_reward_design

from . import qos, wire
from .common import load_task, run_node, set_torch_threads
from .evaluation import BlockResult, EpisodeOutcome, EvalBlocks, EvalCsv, VersionCache, beats_best, episode_success
from .learner_setup import learner_replay_config
from .params import declare_config, parse_overrides
from .transport import IngestLedger
from .weights import encode_weights


@dataclass
class LearnerNodeConfig:
    task: str = field(default="reach", metadata={"help": "task name (observation/action spec)"})
    task_config: str = field(default="", metadata={"help": "YAML file overriding the task config"})
    use_sim: bool = field(default=True, metadata={"help": "simulated world (informational)"})
    cameras: list[str] = field(default_factory=lambda: ["front"], metadata={"help": "camera names (channel count)"})
    agent_config: str = field(default="tiny", metadata={"help": "mentor_policy preset or YAML path"})
    agent_overrides: str = field(default="", metadata={"help": "YAML mapping of AgentConfig overrides"})
    device: str = field(default="auto", metadata={"help": "torch device: auto | cpu | cuda"})
    torch_threads: int = field(default=1, metadata={"help": "torch CPU threads (0 = torch default); 1 avoids thread "
                                                            "contention when nodes share few cores"})
    learner_dir: str = field(default="runs/default/learner",
                             metadata={"help": "replay, journal, topk, checkpoints, tb"})
    transition_topics: list[str] = field(default_factory=lambda: ["transitions"],
                                         metadata={"help": "transition topics (one per robot namespace)"})
    max_env_steps: int = field(default=0, metadata={"help": "checkpoint and exit after this many env steps "
                                                            "(0 = never)"})
    learn: bool = field(default=True, metadata={"help": "false: store episodes only, no updates (record mode)"})
    max_episodes: int = field(default=0, metadata={"help": "checkpoint and exit once the replay holds this many "
                                                           "episodes (0 = never)"})
    utd: float = field(default=1.0, metadata={"help": "updates per env step (update-to-data ratio)"})
    num_seed_frames: int = field(default=-1, metadata={"help": "env steps before updates (-1 = agent config)"})
    max_updates_per_s: float = field(default=5.0, metadata={"help": "update rate cap (0 = none) to leave CPU to "
                                                                    "the actor"})
    publish_weights_every: int = field(default=20, metadata={"help": "publish weights every N updates"})
    checkpoint_every: int = field(default=200, metadata={"help": "checkpoint every N updates"})
    ack_hz: float = field(default=1.0, metadata={"help": "periodic ack re-publish rate [Hz]"})
    replay_capacity: int = field(default=100_000, metadata={"help": "replay capacity [transitions]"})
    keep_evicted_episodes: bool = field(default=True, metadata={"help": "keep the files of episodes evicted from a "
                                                                "full replay (every stored transition stays on disk)"})
    log_every_s: float = field(default=5.0, metadata={"help": "progress line period [s]"})
    nice: int = field(default=0, metadata={"help": "niceness added to the learner's threads (0-19): on a shared CPU "
                                                   "the control-path nodes get the cores first"})
    demo_ratio: float = field(default=0.5, metadata={"help": "share of each batch drawn from the demonstration / "
                                                            "intervention buffer once it holds data (RLPD: 0.5; "
                                                            "0 = never; no demos and no interventions = plain "
                                                            "MENTOR)"})
    demo_dirs: list[str] = field(default_factory=list, metadata={"help": "demo stores (directories of episode "
                                                                         "files) loaded into the demonstration "
                                                                         "buffer at start (once per episode)"})
    seed_replay_from: list[str] = field(default_factory=list, metadata={"help": "replay directories of earlier "
                                                                                "runs copied into this run's replay "
                                                                                "at start (once per episode)"})
    seed_topk_from: list[str] = field(default_factory=list, metadata={"help": "top-K store directories of earlier "
                                                                              "runs offered to this run's store "
                                                                              "(once per directory)"})
    policy_cache_versions: int = field(default=8, metadata={"help": "published policy states kept in memory for "
                                                                    "checkpoints/best.pt [weights versions]; the "
                                                                    "versions open evaluation blocks act with are "
                                                                    "kept too"})

    def __post_init__(self) -> None:
        if self.utd <= 0 or self.ack_hz <= 0 or self.log_every_s <= 0 or self.max_updates_per_s < 0:
            raise ValueError("utd, ack_hz, log_every_s must be > 0 and max_updates_per_s >= 0")
        if self.publish_weights_every < 1 or self.checkpoint_every < 1 or self.replay_capacity < 1:
            raise ValueError("publish_weights_every, checkpoint_every, replay_capacity must be >= 1")
        if not self.transition_topics:
            raise ValueError("transition_topics must name at least one topic")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"nice must be in 0..19, got {self.nice}")
        if not 0.0 <= self.demo_ratio <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if self.max_episodes < 0:
            raise ValueError(f"max_episodes must be >= 0, got {self.max_episodes}")
        if self.policy_cache_versions < 1:
            raise ValueError(f"policy_cache_versions must be >= 1, got {self.policy_cache_versions}")


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("learner")
        self.cfg = declare_config(self, LearnerNodeConfig)
        if self.cfg.nice:  # Linux: per thread; set before the trainer and torch's threads exist, they inherit it
            os.nice(self.cfg.nice)
        set_torch_threads(self.cfg.torch_threads)
        task = load_task(self.cfg.task, self.cfg.task_config)
        self.acfg = load_agent_config(self.cfg.agent_config, parse_overrides(self.cfg.agent_overrides))
        check_reward_design(task, self.acfg.discount)  # refuses a reward for which failing pays more
        self.spec = task.env_spec(len(self.cfg.cameras))
        root = self.root = Path(self.cfg.learner_dir)
        self.ckpt_path = root / "checkpoints" / "latest.pt"
        self.best_path = root / "checkpoints" / "best.pt"
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        self.agent = MentorAgent(self.spec, self.acfg, device=self.cfg.device, store_dir=root / "topk")
        replay_cfg = learner_replay_config(self.acfg, self.cfg.replay_capacity, self.cfg.keep_evicted_episodes)
        self.replay = ReplayBuffer(root / "replay", replay_cfg, self.spec)  # sampling seeded by the agent's seed
        self.demos = ReplayBuffer(root / "demos", replay_cfg, self.spec)  # demonstrations and intervened episodes
        self.mixed = MixedReplay(self.replay, self.demos, self.cfg.demo_ratio)
        self._seed_from_earlier_runs()
        self.journal = EpisodeJournal(root / "journal")
        self.ledger = IngestLedger(root / "ingest.ledger")
        self.seed_frames = self.acfg.num_seed_frames if self.cfg.num_seed_frames < 0 else self.cfg.num_seed_frames
        self.updates = self.malformed = 0
        self.demo_share = 0.0  # share of the last batch drawn from the demonstration buffer
        self.version_file = root / "weights_version"  # highest version ever published: never reused
        self.version = self._published_version()  # read once; each publish rewrites it before sending
        self._restore()
        self.open: dict[str, tuple[int, str]] = self._recover_journal()  # source -> (episode_id, journal key)
        self.open_meta: dict[str, dict] = {}  # source -> meta of the newest record of its open episode
        self.agent_lock, self.replay_lock = threading.Lock(), threading.Lock()
        self.ended: queue.Queue[EpisodeOutcome] = queue.Queue()  # finished episodes, for the trainer thread
        self.policy_cache = VersionCache(self.cfg.policy_cache_versions)  # weights version -> published state
        self.eval_blocks = EvalBlocks()
        self.eval_csv = EvalCsv(root / "eval.csv")
        self.best_success = self._load_best_score()
        self.last_gap_warn: dict[str, float] = {}
        self.tb = SummaryWriter(str(root / "tb"))
        self.pub_weights = self.create_publisher(UInt8MultiArray, "learner/weights", qos.LATCHED)
        self.pub_ack = self.create_publisher(String, "learner/ack", qos.LATCHED)
        for topic in self.cfg.transition_topics:
            self.create_subscription(UInt8MultiArray, topic, self._on_transition, qos.TRANSITIONS)
        self.create_timer(1.0 / self.cfg.ack_hz, self._publish_ack)
        self._publish_weights()
        self.exit_requested, self.exit_code = False, 0
        self.stop = threading.Event()
        self.trainer = threading.Thread(target=self._train_loop, name="trainer", daemon=True)
        self.trainer.start()
        self.get_logger().info(f"learner up: spec {self.spec}, {self.replay.num_transitions} transitions in replay, "
                               f"env_steps {self.env_steps}, updates {self.updates}, "
                               f"topics {self.cfg.transition_topics}")

    @property
    def env_steps(self) -> int:
        """Env steps = step records durably ingested, over all sources (survives restarts via the ledger)."""
        return sum(seq + 1 for seq in self.ledger.acked.values())

    # -- recovery ----------------------------------------------------------------------------
    def _restore(self) -> None:
        if not self.ckpt_path.exists():
            return
        ck = read_latest(self.ckpt_path)
        self.agent.load_state_dict(ck["agent"])
        self.updates = int(ck["updates"])
        self.version = max(int(ck["weights_version"]), self.version)
        self.get_logger().info(f"resumed from {self.ckpt_path}: updates {self.updates}, weights v{self.version} "
                               f"next, {self.episodes} episodes")

    def _seed_from_earlier_runs(self) -> None:
        """Demo stores -> the demonstration buffer, earlier replays -> the replay, earlier top-K stores -> the
        store. Keyed by the source file (or a marker per store), so a restart adds nothing twice."""
        for kind, dirs, buffer in (("demo", self.cfg.demo_dirs, self.demos), ("seed", self.cfg.seed_replay_from,
                                                                               self.replay)):
            for directory in dirs:
                added = seed_episodes(buffer, directory, self.spec, kind)
                self.get_logger().info(f"{kind} episodes from {directory}: {added} added "
                                       f"({buffer.num_transitions} transitions in {buffer.directory.name})")
        marker = self.root / "seeded_topk.txt"
        done = set(marker.read_text().split("\n")) if marker.exists() else set()
        for directory in self.cfg.seed_topk_from:
            key = str(Path(directory).resolve())
            if key in done or self.agent.store is None:
                continue
            kept = self.agent.store.seed_from(directory)
            atomic_write_text(marker, "\n".join(sorted(done | {key})) + "\n")
            done.add(key)
            self.get_logger().info(f"top-K store seeded from {directory}: {kept} snapshot(s) kept")

    @property
    def episodes(self) -> int:
        """Episodes stored in the replay, ever (durable: derived from its files, not from a checkpoint)."""
        return self.replay.episodes_added

    def _published_version(self) -> int:
        """The highest weights version published before (0 when none); the file is written before each publish."""
        try:
            return int(self.version_file.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            self.get_logger().error(f"{self.version_file} is unreadable: versions continue from the checkpoint's")
            return 0

    def _load_best_score(self) -> float | None:
        """The success rate stored in ``best.pt`` (None without one): a restart never replaces a better one."""
        if not self.best_path.exists():
            return None
        try:
            best = read_best(self.best_path)
            score = float(best["eval_success"])
        except (CheckpointError, TypeError, ValueError) as exc:
            self.get_logger().error(f"{self.best_path} is unreadable ({exc}); the next evaluation block replaces it")
            return None
        self.get_logger().info(f"best evaluation so far: success {score:.2f} (weights v{best.get('weights_version')}, "
                               f"{self.best_path})")
        return score

    def _recover_journal(self) -> dict[str, tuple[int, str]]:
        """Reopen unfinished episodes; the journal's metas repair a ledger that missed its last commit."""
        open_eps = {}
        for key in self.journal.keys():
            pairs = self.journal.read(key, repair=True)
            source, eid = key.rsplit("-ep", 1)
            open_eps[source] = (int(eid), key)
            for record, meta in pairs:
                if int(meta["seq"]) == self.ledger.acked.get(source, -1) + 1:
                    self.ledger.commit(source, int(meta["seq"]))
            self.get_logger().info(f"recovered unfinished episode {key} ({len(pairs)} steps) from the journal")
        return open_eps

    # -- ingest ------------------------------------------------------------------------------
    def _on_transition(self, msg: UInt8MultiArray) -> None:
        try:
            payload = wire.msg_to_bytes(msg)
            scalars, meta = read_step_header(payload)  # checked whole; the arrays are decoded once, at finalise
            source, seq, eid = str(meta["source"]), int(meta["seq"]), int(meta["episode_id"])
            verdict = self.ledger.check(source, seq)
        except Exception as exc:  # noqa: BLE001 - malformed input must not kill the learner
            self.malformed += 1
            self.get_logger().error(f"dropping malformed transition ({len(msg.data)} bytes): {exc}")
            return
        if verdict == "dup":
            return
        if verdict == "gap":
            self._warn_gap(source, seq)
            return
        key = f"{source}-ep{eid}"
        if source in self.open and self.open[source][0] != eid:
            self._finalise(source, truncated=True, meta=self.open_meta.get(source))
        self.journal.append_encoded(key, payload)  # the bytes the policy sent, verbatim
        self.ledger.commit(source, seq)
        self.open[source] = (eid, key)
        self.open_meta[source] = meta
        if meta.get("eval") and int(meta.get("eval_block", -1)) >= 0:  # keep the state this block acts with
            self.policy_cache.pin(int(meta.get("weights_version", -1)), (source, int(meta["eval_block"])))
        if scalars["is_last"]:
            self._finalise(source, truncated=False, meta=meta)
        self._publish_ack()

    def _warn_gap(self, source: str, seq: int) -> None:
        now = time.monotonic()
        if now - self.last_gap_warn.get(source, 0.0) > 2.0:
            self.last_gap_warn[source] = now
            self.get_logger().warning(f"transition gap from {source}: have up to {self.ledger.acked.get(source, -1)}, "
                                   f"got {seq}; waiting for the resend of {self.ledger.acked.get(source, -1) + 1}.."
                                   f"{seq - 1} (gap events so far: {self.ledger.gaps})")

    def _finalise(self, source: str, truncated: bool, meta: dict | None = None) -> None:
        """Episode of ``source`` -> replay; its outcome (from ``meta``, the is_last record's, or the newest
        record's when truncated) is queued for the trainer thread."""
        eid, key = self.open.pop(source)
        self.open_meta.pop(source, None)
        try:
            episode = self.journal.finish(key)
        except ReplayError as exc:
            rows = len(self.journal.read(key))
            self.get_logger().warning(f"episode {key} ({rows} rows) not added to the replay: {exc}")
            truncate_torn_line(self.root / "discarded_rows.txt")
            with open(self.root / "discarded_rows.txt", "a") as fh:  # accounted for, never silently lost
                fh.write(f"{key} {rows}\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.journal.discard(key)
            return
        with self.replay_lock:
            stored_before = self.replay.has_episode(key)
            # keyed: idempotent across a crash before the discard; intervened episodes go to the demos too
            self.mixed.add_episode(episode, key=key)
        self.journal.discard(key)
        if stored_before:  # stored and counted before the restart; its outcome was handled then too
            self.get_logger().info(f"episode {key} was already in the replay (a crash came before its journal "
                                   "entry was retired): not added twice")
            return
        # return and success as the policy's episode recorder counted them (its is_last meta)
        ret = float((meta or {}).get("episode_return", np.sum(episode["reward"])))
        self.ended.put(EpisodeOutcome.from_meta(
            meta, source=source, episode_id=eid, ret=ret,
            success=episode_success(meta, float(episode["discount"][-1]), episode.get("success")),
            length=len(episode["reward"]) - 1,
            truncated=truncated or bool((meta or {}).get("truncated", False)), env_steps=self.env_steps))

    def _publish_ack(self) -> None:
        if self.ledger.acked:
            self.pub_ack.publish(wire.json_to_msg(dict(self.ledger.acked)))

    # -- training ----------------------------------------------------------------------------
    def _train_loop(self) -> None:
        last_log = time.monotonic()
        try:
            while not self.stop.is_set():
                self._handle_ended()
                if self.cfg.max_env_steps and self.env_steps >= self.cfg.max_env_steps:
                    print(f"learner: reached {self.env_steps} env steps (max_env_steps {self.cfg.max_env_steps})",
                          flush=True)
                    self.exit_requested = True
                    return
                with self.replay_lock:  # an episode is in both buffers or in neither
                    stored, demo_transitions = self.episodes, self.demos.num_transitions
                if self.cfg.max_episodes and stored >= self.cfg.max_episodes:
                    print(f"learner: {stored} episodes stored (max_episodes {self.cfg.max_episodes}): "
                          f"{demo_transitions} demonstration transitions in {self.demos.directory}", flush=True)
                    self.exit_requested = True
                    return
                if not self._may_update():
                    self.stop.wait(0.05)
                else:
                    t0 = time.monotonic()
                    self._update()
                    if self.cfg.max_updates_per_s > 0:
                        self.stop.wait(max(0.0, 1.0 / self.cfg.max_updates_per_s - (time.monotonic() - t0)))
                if time.monotonic() - last_log > self.cfg.log_every_s:
                    last_log = time.monotonic()
                    print(f"learner: env_steps {self.env_steps} updates {self.updates} episodes {self.episodes} "
                          f"replay {self.replay.num_transitions} demos {self.demos.num_transitions} batch demo share "
                          f"{self.demo_share:.2f} weights v{self.version} gaps {self.ledger.gaps} "
                          f"dups {self.ledger.duplicates} malformed {self.malformed}", flush=True)
        except Exception as exc:  # noqa: BLE001 - fatal: logged, node exits non-zero
            self.get_logger().fatal(f"training loop failed: {exc!r}")
            self.exit_code, self.exit_requested = 2, True
            raise

    def _may_update(self) -> bool:
        if not self.cfg.learn:
            return False
        if self.env_steps < max(self.seed_frames, 1) or self.mixed.num_transitions < 1:
            return False
        return self.updates < (self.env_steps - self.seed_frames) * self.cfg.utd

    def _update(self) -> None:
        with self.replay_lock:
            batch = self.mixed.sample(self.acfg.batch_size)
        self.demo_share = float(np.mean(batch["from_demo"])) if "from_demo" in batch else 0.0
        with self.agent_lock:
            metrics = self.agent.update(batch, self.env_steps)
        self.updates += 1
        for k, v in metrics.items():
            self.tb.add_scalar(f"train/{k}", float(v), self.updates)
        if metrics.get("perturbed"):
            print(f"learner: perturbation at update {self.updates}", flush=True)
        if self.updates % self.cfg.publish_weights_every == 0:
            self._publish_weights()
        if self.updates % self.cfg.checkpoint_every == 0:
            self._checkpoint()

    def _handle_ended(self) -> None:
        while not self.ended.empty():
            ep = self.ended.get()
            with self.agent_lock:
                self.agent.end_episode(ep.ret, self.env_steps)
            kind = "eval" if ep.eval else "episode"
            self.tb.add_scalar(f"{kind}/return", ep.ret, ep.env_steps)
            self.tb.add_scalar(f"{kind}/success", float(ep.success), ep.env_steps)
            if not ep.eval:
                self.tb.add_scalar("episode/length", ep.length, ep.env_steps)
            print(f"learner: {'eval ' if ep.eval else ''}episode {ep.episode_id} ({ep.source}) return {ep.ret:.3f} "
                  f"success {ep.success} length {ep.length}{' truncated' if ep.truncated else ''}", flush=True)
            if ep.eval:
                self._handle_eval_episode(ep)

    # -- evaluation --------------------------------------------------------------------------
    def _handle_eval_episode(self, ep: EpisodeOutcome) -> None:
        """eval.csv row; a complete block is scored, blocks that can no longer complete are dropped."""
        self.eval_csv.append(ep)
        block = self.eval_blocks.add(ep)
        while self.eval_blocks.abandoned:
            stale = self.eval_blocks.abandoned.pop(0)
            self.policy_cache.unpin((stale.source, stale.block))
            self.get_logger().warning(f"evaluation block {stale.block} of {stale.source} is incomplete "
                                      f"({len(stale.episodes)} episodes arrived): not scored")
        if block is not None:
            self._finish_block(block)

    def _finish_block(self, block: BlockResult) -> None:
        """TensorBoard + progress line; best.pt when the block is valid and at least as good as the best."""
        try:
            n, rate = len(block.episodes), block.success_rate
            self.tb.add_scalar("eval/block_success", rate, block.env_steps)
            print(f"learner: eval block {block.block} ({block.source}) weights v{block.weights_version}: success "
                  f"{sum(e.success for e in block.episodes)}/{n} = {rate:.2f}, mean return {block.mean_return:.3f} "
                  f"at env_steps {block.env_steps} (best so far "
                  f"{'none' if self.best_success is None else f'{self.best_success:.2f}'})", flush=True)
            if not block.valid:
                self.get_logger().warning(
                    f"evaluation block {block.block} of {block.source} not scored: {block.reason}")
            elif beats_best(rate, self.best_success):
                self._save_best(block)
        finally:
            self.policy_cache.unpin((block.source, block.block))

    def _save_best(self, block: BlockResult) -> None:
        cached = self.policy_cache.get(block.weights_version)
        if cached is None:
            self.get_logger().warning(f"weights v{block.weights_version} of evaluation block {block.block} are no "
                                      f"longer cached (kept: {self.policy_cache.versions()}): best.pt not updated")
            return
        state, steps = cached
        write_best(self.best_path, policy=state, weights_version=block.weights_version, env_steps=steps,
                   eval_success=block.success_rate, run=self._run_description(), eval_env_steps=block.env_steps,
                   eval_return=block.mean_return, eval_episodes=len(block.episodes), eval_block=block.block,
                   source=block.source)
        self.best_success = block.success_rate
        print(f"learner: new best evaluation {block.success_rate:.2f} (weights v{block.weights_version}) -> "
              f"{self.best_path}", flush=True)

    def _run_description(self) -> dict:
        """What a deploy needs besides the weights: the agent config the networks were built from, task, cameras."""
        return run_description(self.acfg.to_dict(), self.cfg.task, list(self.cfg.cameras))

    def _publish_weights(self) -> None:
        with self.agent_lock:
            state = self.agent.policy_state()
        bad = non_finite_entries(state)
        if bad:  # never hand diverged weights to the robot; the update's own finite checks stop training
            self.get_logger().error(f"not publishing weights with non-finite values in {bad}",
                                    throttle_duration_sec=10.0)
            return
        self.version += 1
        atomic_write_text(self.version_file, f"{self.version}\n")  # durable before any node can see it
        self.policy_cache.put(self.version, (state, self.env_steps))
        self.pub_weights.publish(wire.bytes_to_msg(encode_weights(self.version, self.env_steps, state)))
        self.tb.add_scalar("learner/weights_version", self.version, self.updates)

    def _checkpoint(self) -> None:
        with self.agent_lock:
            write_latest(self.ckpt_path, agent=self.agent.state_dict(), policy=self.agent.policy_state(),
                         env_steps=self.env_steps, updates=self.updates, weights_version=self.version,
                         episodes=self.episodes, run=self._run_description())
        self.get_logger().info(f"checkpoint {self.ckpt_path} at update {self.updates}")

    def shutdown(self) -> None:
        self.stop.set()
        if self.trainer.is_alive() and threading.current_thread() is not self.trainer:
            self.trainer.join(timeout=60.0)
        try:
            self._checkpoint()
        except CheckpointError as exc:  # e.g. diverged weights: the last good latest.pt stays
            self.get_logger().error(f"final checkpoint not written: {exc}")
        self.tb.close()
        self.ledger.close()


def main(args: list[str] | None = None) -> int:
    return run_node(LearnerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
