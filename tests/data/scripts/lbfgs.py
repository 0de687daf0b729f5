"""LBFGS with a closure: forward and backward run inside optimizer.step(); closure calls are counted."""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
x, y = torch.randn(40, 3), torch.randn(40, 1)
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.1, max_iter=3, tolerance_grad=0, tolerance_change=0)
criterion = nn.MSELoss()
calls = []
for _step in range(200):
    n = 0

    def closure():
        global n
        n += 1
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    calls.append(n)
print(f"closure calls per step: {sorted(set(calls))}")
