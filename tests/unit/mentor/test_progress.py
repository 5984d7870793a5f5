"""The status line of mentor-run train: what it reads from the learner's lines and how it shows it."""
from __future__ import annotations

import io

from mentor.progress import ProgressDisplay, TrainingProgress

LINES = [
    "learner: env_steps 120 updates 30 episodes 2 replay 100 demos 0 batch demo share 0.00 weights v3 gaps 0 dups 0",
    "learner: episode 2 (robot) return 3.250 success True length 50",
    "learner: episode 3 (robot) return 1.000 success False length 50 truncated",
    "learner: eval episode 4 (robot) return 9.000 success True length 50",
    "learner: eval block 0 (robot) weights v3: success 1/2 = 0.50, mean return 4.0 at env_steps 250 (best so far none)",
    "learner: perturbation at update 40",
    "learner: eval block 1 (robot) weights v5: success 0/2 = 0.00, mean return 1.0 at env_steps 400 (best so far 0.50)",
    "learner: env_steps 410 updates 95 episodes 8 replay 400 demos 0 batch demo share 0.00 weights v5 gaps 0 dups 0",
]


def test_progress_follows_the_learner_lines():
    p = TrainingProgress(target_steps=1000, window=20)
    shown = [p.feed(line) for line in LINES]
    assert not any(shown)  # routine lines stay in the log file
    assert (p.env_steps, p.updates, p.episodes, p.perturbations) == (410, 95, 8, 1)
    assert p.rolling_success == 0.5  # the two training episodes; the evaluation episode is not one
    assert (p.last_eval, p.best_eval) == (0.0, 0.5)
    assert "success (last 2) 0.50" in p.describe() and "eval 0.00 (best 0.50)" in p.describe()
    assert p.feed("[WARN] [1.0] [learner]: transition gap from robot")
    assert p.feed("learner: new best evaluation 0.50 (weights v3) -> best.pt")
    assert p.feed("learner: reached 1000 env steps (max_env_steps 1000)") and p.env_steps == 1000


def test_display_prints_a_plain_status_line_without_a_terminal():
    out = io.StringIO()
    display = ProgressDisplay(TrainingProgress(target_steps=1000), stream=out, tty=False, plain_every_s=0.0)
    for line in LINES:
        display.line("learner", line + "\n")
    display.line("learner", "[ERROR] [2.0] [learner]: dropping malformed transition\n")
    display.refresh()
    display.close()
    text = out.getvalue().splitlines()
    assert text[0] == "[learner] [ERROR] [2.0] [learner]: dropping malformed transition"  # shown, routine lines not
    assert text[1].startswith("mentor-run: env steps 410/1000 (41%), ETA ") and "steps/s" in text[1]
    assert "episodes 8 | success (last 2) 0.50 | eval 0.00 (best 0.50) | updates 95" in text[1]
    assert len(text) == 3  # one status line per refresh period (0 here) and the final one


def test_display_draws_one_bar_on_a_terminal():
    out = io.StringIO()
    display = ProgressDisplay(TrainingProgress(target_steps=1000), stream=out, tty=True)
    display.line("learner", LINES[0] + "\n")
    display.refresh()
    display.close()
    text = out.getvalue()
    assert "env steps: 120/1000" in text and "12%" in text and "episodes 2 | updates 30" in text
    assert text.rstrip().splitlines()[-1].startswith("mentor-run: env steps 120/1000")
