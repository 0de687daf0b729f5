"""Pre-training with one optimizer, then fine-tuning the head with a new one; nothing printed."""

import torch
from torch import nn

torch.manual_seed(0)
backbone, head = nn.Sequential(nn.Linear(6, 8), nn.Tanh()), nn.Linear(8, 2)
x, y = torch.randn(16, 6), torch.randn(16, 2)
pre = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=1e-3)
for _ in range(3):
    pre.zero_grad()
    nn.functional.mse_loss(head(backbone(x)), y).backward()
    pre.step()
backbone.requires_grad_(False)
tune = torch.optim.SGD(head.parameters(), lr=0.1)
for _ in range(30):
    tune.zero_grad()
    nn.functional.mse_loss(head(backbone(x)), y).backward()
    tune.step()
