"""Robot, camera and task backends for MENTOR: franky (real or franky-sim), RealSense, simulated cameras."""

__all__ = ["make"]


def __getattr__(name: str):
    # Lazy: ``import robot_envs.transforms`` etc. must not pull in the env, tasks and simulator code.
    if name == "make":
        from robot_envs.env import make

        return make
    raise AttributeError(f"module 'robot_envs' has no attribute {name!r}")
