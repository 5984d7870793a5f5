"""Shapes shared by the agent, the replay buffer, the environments and the ROS nodes."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSpec:
    """What an environment feeds the agent and what it accepts back.

    The stacked policy image is ``(frame_stack * frame_channels, H, W)`` uint8, oldest time step
    first; within one step the cameras follow each other in configuration order (cam0 RGB, cam1 RGB).
    """

    frame_channels: int  # channels of ONE time step: 3 * number of cameras
    image_size: tuple[int, int]  # (H, W) of the policy image in pixels, e.g. (84, 84)
    proprio_dim: int  # length of the proprioception vector; 0 means none
    action_dim: int  # the action is normalised to [-1, 1]^action_dim

    def __post_init__(self) -> None:
        if self.frame_channels <= 0 or self.frame_channels % 3:
            raise ValueError(f"frame_channels must be a positive multiple of 3 (RGB per camera), "
                             f"got {self.frame_channels}")
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"image_size must be (H, W) with both >= 16, got {self.image_size}")
        if self.proprio_dim < 0:
            raise ValueError(f"proprio_dim must be >= 0, got {self.proprio_dim}")
        if self.action_dim <= 0:
            raise ValueError(f"action_dim must be > 0, got {self.action_dim}")
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))

    @property
    def n_cameras(self) -> int:
        return self.frame_channels // 3

    def stacked_channels(self, frame_stack: int) -> int:
        """Channels of the stacked policy image for ``frame_stack`` time steps."""
        return self.frame_channels * frame_stack
