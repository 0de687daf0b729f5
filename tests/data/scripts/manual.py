"""Weights updated by hand (no optimizer): steps end at each backward()."""

import torch

torch.manual_seed(0)
w = torch.zeros(5, 1, requires_grad=True)
x, y = torch.randn(64, 5), torch.randn(64, 1)
model = torch.nn.Linear(5, 1)
for _step in range(300):
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.01 * p.grad
            p.grad = None
