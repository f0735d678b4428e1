"""The collector during capture: long-lived objects frozen out of its walks, the model's own garbage
still collected, and the process's collector state left exactly as found (gcpause.heap_frozen)."""
from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from mevreport.capture import capture
from mevreport.errors import ModelRunError
from mevreport.gcpause import freeze_more, heap_frozen


class _Cycle:
    def __init__(self, t: torch.Tensor) -> None:
        self.me = self
        self.t = t


class Notes:
    """Not a list attribute of the module: capture puts those back as they were."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, int, list[bool]]] = []
        self.cycles: list[weakref.ref] = []


class Observer(nn.Module):
    """Notes, on each call, the collector's state and whether earlier calls' cyclic garbage is gone."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.notes = Notes()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        n = self.notes
        n.seen.append((gc.isenabled(), gc.get_freeze_count(), [r() is None for r in n.cycles]))
        n.cycles.append(weakref.ref(_Cycle(torch.ones(8))))  # garbage at once: only the collector frees it
        return y


class Fails(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("no")


def test_capture_freezes_then_unfreezes_and_the_models_garbage_is_still_collected():
    assert gc.get_freeze_count() == 0
    model = Observer()
    capture(model, torch.randn(2, 4), runs=3)
    # calls: warm-up, recorded, 3 per-op timed, 3 forward passes
    assert len(model.notes.seen) == 8
    assert all(enabled for enabled, _, _ in model.notes.seen)  # never paused: the model's cycles can be freed
    assert all(frozen > 0 for _, frozen, _ in model.notes.seen)  # what was alive is out of the collector's walks
    # after the recorded call the young generations were collected before the graph was frozen:
    # the first two calls' cycles are gone by the first timed run, not frozen with the graph
    gone = model.notes.seen[2][2]
    assert gone[:2] == [True, True]
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    del model
    gc.collect()


def test_a_failing_capture_unfreezes_too():
    with pytest.raises(ModelRunError):
        capture(Fails(), torch.randn(2, 4))
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_a_process_that_froze_objects_itself_is_left_as_it_is():
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert before > 0
        model = Observer()
        capture(model, torch.randn(2, 4), runs=1)
        # Frozen objects still die by reference count, so the count may fall a little (CI saw 2 fewer);
        # it never rises (the capture froze nothing: its model and tensors, made after the process froze,
        # would add thousands) and never drops to zero (the process's objects were not unfrozen).
        seen = [frozen for _, frozen, _ in model.notes.seen]
        assert seen and min(seen) > 0 and max(seen) <= before
        assert 0 < gc.get_freeze_count() <= before
    finally:
        gc.unfreeze()


def test_a_paused_collector_is_left_paused_and_nothing_is_frozen():
    gc.disable()
    try:
        with heap_frozen():
            freeze_more()
            assert gc.get_freeze_count() == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_nested_blocks_freeze_once_and_the_outer_one_unfreezes():
    with heap_frozen():
        outer = gc.get_freeze_count()
        assert outer > 0
        with heap_frozen():
            kept = [[i] for i in range(1000)]  # new tracked objects
            freeze_more()
            assert gc.get_freeze_count() >= outer + 1000
        assert gc.get_freeze_count() > 0  # the inner block does not unfreeze
        del kept
    assert gc.get_freeze_count() == 0
    freeze_more()  # outside any block: nothing
    assert gc.get_freeze_count() == 0
