"""A model that changes its own parameters in forward is left as found (issue 11)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import mevreport


class Drift(nn.Module):
    """Writes its weights every call: through .data, in place under no_grad, by indexing, and with out=."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 3))
        self.fc = nn.Linear(3, 3)
        self.tied = nn.Linear(3, 3, bias=False)
        self.tied.weight = self.fc.weight  # a tied parameter is restored once, under both names
        self.steps = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.w.data.add_(1)
        with torch.no_grad():
            self.fc.weight.mul_(2)
            self.fc.bias[0] = 7.0
            torch.add(self.steps, 1, out=self.steps)
        return x @ self.w + self.fc(x) + self.tied(x) + self.steps


@pytest.mark.parametrize("runs", [0, 3])
def test_parameters_written_in_forward_are_restored_exactly(runs: int) -> None:
    torch.manual_seed(0)
    model = Drift()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ids = {k: id(p) for k, p in model.named_parameters()}
    report = mevreport.analyze(model, torch.randn(2, 3), runs=runs)
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert {k: id(p) for k, p in model.named_parameters()} == ids
    assert model.fc.weight is model.tied.weight
    assert report.totals.params == 9 + 9 + 3 + 1
    # the model really writes them: one more call changes every one
    model(torch.randn(2, 3))
    assert not torch.equal(model.w, before["w"]) and not torch.equal(model.fc.weight, before["fc.weight"])
    assert model.steps.item() == 1.0 and model.fc.bias[0].item() == 7.0
