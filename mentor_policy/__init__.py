"""MENTOR agent library: MoE actor-critic, task-oriented perturbation, replay, export (torch + numpy only)."""
