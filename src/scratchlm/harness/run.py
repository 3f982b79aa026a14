"""`scratchlm eval`: lm-evaluation-harness tasks on a checkpoint, and its results as markdown.

`evaluate_checkpoint` runs `lm_eval.simple_evaluate` with `ScratchLM` on the named tasks: the
offline tasks shipped in `tasks/` (`LOCAL_TASKS`) and, with internet, any task of the harness
(`hellaswag`, `arc_easy`, ...: the harness downloads their data). The harness's own task index
takes a minute or more to build, so it is only read when a task is not one of ours. The results
JSON goes to a temporary file, then is renamed into place.

`markdown_table` needs neither lm_eval nor torch: it reads the results dict (or the JSON file's
contents) back, e.g. for a report.
"""

import json
import logging
from pathlib import Path
from typing import Any

from scratchlm.config import CHECKPOINT_ARG, DEVICE_ARG, Command, arg
from scratchlm.harness.local_tasks import LOCAL_TASKS, TASK_DIR
from scratchlm.train.checkpoint import find_checkpoint

log = logging.getLogger(__name__)


def evaluate_checkpoint(
    checkpoint: str | Path,
    tasks: list[str],
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    out: str | Path | None = None,
    apply_chat_template: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Evaluate the checkpoint (or a run directory's newest) on `tasks`; (results, JSON path).

    limit: at most this many documents per task. out: the JSON file (default:
    <run dir>/eval/<checkpoint>-<tasks>.json, the run dir being the one holding checkpoints/).
    """
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
        from lm_eval.utils import handle_non_serializable
    except ImportError:
        raise ValueError(
            "scratchlm eval needs lm-evaluation-harness: pip install 'scratchlm[eval]'"
        ) from None
    from scratchlm.harness.lm import ScratchLM

    tasks = [t.strip() for t in tasks if t.strip()]
    if not tasks:
        raise ValueError(f"--tasks names no task; offline tasks: {', '.join(LOCAL_TASKS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    ckpt = find_checkpoint(checkpoint)
    if out is not None and not Path(out).parent.is_dir():
        raise FileNotFoundError(f"the directory of --out {out} does not exist; create it first")
    out = Path(out) if out is not None else default_out(ckpt, tasks)
    online = [t for t in tasks if t not in LOCAL_TASKS]
    if online:
        log.info("reading lm-eval's task index for %s (a minute or more)", ", ".join(online))
    manager = TaskManager(include_path=str(TASK_DIR), include_defaults=bool(online))
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ValueError(
            f"unknown task {', '.join(unknown)}: use an offline task ({', '.join(LOCAL_TASKS)}) "
            "or a task name of lm-eval ('lm-eval ls tasks' lists them)"
        )
    model = ScratchLM(ckpt, batch_size=batch_size, device=device)
    try:
        results = lm_eval.simple_evaluate(
            model=model,
            tasks=tasks,
            limit=limit,
            task_manager=manager,
            batch_size=batch_size,
            device=str(model.device),
            log_samples=False,
            apply_chat_template=apply_chat_template,
        )
    except OSError as exc:  # no network: the harness could not download a task's data
        if not online:
            raise
        raise OSError(f"{exc}; {', '.join(online)} download their data: connect to the internet, "
                      f"or use the offline tasks {', '.join(LOCAL_TASKS)}") from None  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=handle_non_serializable) + "\n")
    tmp.replace(out)
    return results, out


def harness_table(results: dict[str, Any]) -> str:
    """The harness's own text table of the results (and of its groups, when there are any)."""
    from lm_eval.utils import make_table

    tables = [make_table(results)]
    if results.get("groups"):
        tables.append(make_table(results, "groups"))
    return "\n".join(tables)


def default_out(ckpt: Path, tasks: list[str]) -> Path:
    """<run dir>/eval/<checkpoint name>-<task>+<task>.json; a lone checkpoint is its own run dir."""
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt
    return run_dir / "eval" / f"{ckpt.name}-{'+'.join(tasks)}.json"


def markdown_table(results: dict[str, Any]) -> str:
    """A markdown table of the harness's results: task, metric, value, stderr, documents.

    One row per metric of each task ("metric,filter" keys), in the order the harness reports them;
    each "*_stderr" entry goes beside its metric.
    """
    lines = ["| task | metric | value | stderr | documents |", "|---|---|---:|---:|---:|"]
    samples = results.get("n-samples", {})
    for task, metrics in results["results"].items():
        n = samples.get(task, {}).get("effective", "")
        for key, value in metrics.items():
            name, comma, filt = key.partition(",")
            if not comma or name.endswith("_stderr"):  # alias, name, sample_len; stderrs
                continue
            stderr = metrics.get(f"{name}_stderr,{filt}", "")
            label = name if filt in ("", "none") else f"{name} ({filt})"
            lines.append(f"| {task} | {label} | {_number(value)} | {_number(stderr)} | {n} |")
    return "\n".join(lines) + "\n"


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def eval_command(
    checkpoint: str,
    tasks: str,
    limit: int | None,
    batch_size: int,
    device: str,
    apply_chat_template: bool,
    out: Path | None,
) -> str:
    """`scratchlm eval`: the harness's table, then where the JSON went."""
    results, path = evaluate_checkpoint(
        checkpoint, tasks.split(","), limit, batch_size, device, out, apply_chat_template
    )
    return f"{harness_table(results)}\nresults: {path}"


COMMAND = Command(
    run=eval_command,
    description="Run lm-eval tasks on the checkpoint with our model and tokenizer. Offline "
    "tasks: story_endings, story_perplexity; with internet any harness task (hellaswag, ...).",
    args=(
        CHECKPOINT_ARG,
        arg("--tasks", required=True, help="comma-separated task names"),
        arg("--limit", type=int, default=None, help="at most N documents per task"),
        arg("--batch-size", type=int, default=16, help="requests per forward (16)"),
        DEVICE_ARG,
        arg("--apply-chat-template", action="store_true", help="chat checkpoints only"),
        arg("--out", type=Path, default=None, metavar="FILE", help="results JSON"),
    ),
)
