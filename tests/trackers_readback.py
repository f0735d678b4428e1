"""Each tracker's files read back with the tracker library's own reader (for tests/test_trackers*.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in ``log_dir``'s event files, as (step, value) pairs, via TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def wandb_offline_run(wandb_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The one offline run under ``wandb_dir`` and its state/summary as ``wandb leet inspect`` reads its log."""
    (run_dir,) = Path(wandb_dir).glob("offline-run-*")
    read = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(run_dir)],
                          capture_output=True, text=True, timeout=120, check=True)
    return run_dir, json.loads(read.stdout)
