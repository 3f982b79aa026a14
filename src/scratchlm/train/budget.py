"""Wall-clock budgets: `training.time_budget=10m` sizes a run to the time it may take.

The loop runs a probe on a provisional schedule: it skips the first `PROBE_SKIP` updates (which pay
for warm-up: allocations, kernel selection), then times at least `PROBE_STEPS` more and at least
`PROBE_SHARE` of the budget, so that a fast step is timed over many updates and a moment's load on
a shared machine weighs less. From that time per update and the time of an evaluation it fixes the
number of updates that fit in what is left of the budget with their share of the periodic
evaluations (under torchrun, the fewest any rank measured). The learning-rate schedule (warmup,
decay to min_lr) spans that many steps, the count is saved in every checkpoint, and `--resume`
continues the same schedule (a resumed run keeps the count its checkpoint recorded).

A schedule whose rate before some update does not depend on the total (WSD's warmup and plateau, a
constant schedule throughout: `scratchlm.train.config.plateau_end`) lets the run follow the clock:
every `PROBE_STEPS` updates until then it counts again, from the time per update over the last
`RESIZE_SHARE` of the budget, so that a machine slower or faster than during the probe still ends
the run at its budget. The count never moves the updates already done past the plateau, so the
rates they had are those of a run planned for the final count from the start, and the decay spans
that count's last share.
A cosine's rate depends on the total from its warmup on: it keeps the probe's count.

What the budget counts: everything from the start of the loop to the last update (updates,
periodic evaluations, samples and checkpoints). The final evaluation, checkpoint and report come
after it. During the probe the schedule runs as if the run were very long: its updates follow the
warmup and then the peak rate (WSD's plateau; a cosine's first steps, which barely depend on the
total).
"""

import re

PROBE_SKIP = 2
PROBE_STEPS = 8
PROBE_SHARE = 0.03
# A schedule total for the probe's updates: long enough that cosine and WSD stay in warmup/plateau.
PROBE_TOTAL = 10**9
# A run that follows the clock times its updates over this last share of the budget.
RESIZE_SHARE = 0.1
# A sized run that is still training after this share of the budget stops at the next step.
OVERRUN = 1.05

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number of seconds (`600`, `90.5`) or one with a unit (`90s`, `10m`)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"training.time_budget must be a positive duration like 90s, 10m, 1h or 600 "
            f"(seconds), got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def steps_in_budget(
    budget_s: float,
    elapsed_s: float,
    done: int,
    step_s: float,
    eval_s: float,
    eval_interval: int,
) -> int:
    """The total number of updates when `done` have taken `elapsed_s` of `budget_s` seconds.

    Each further update costs `step_s`, plus `eval_s` once every `eval_interval` updates. The
    result is at least `done` (a budget already spent ends the run now).
    """
    per_update = step_s + eval_s / eval_interval
    left = budget_s - elapsed_s
    if per_update <= 0:
        raise ValueError("cannot size a run by time: an update took no measurable time")
    return done + max(0, int(left // per_update))
