"""weight_norm on a layer, and a model that returns a dict of outputs (two heads, two losses added)."""

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = weight_norm(nn.Linear(6, 16))
        self.cls = nn.Linear(16, 3)
        self.reg = nn.Linear(16, 1)

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        return {"logits": self.cls(h), "value": self.reg(h)}


torch.manual_seed(0)
model = TwoHeads()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x, y, v = torch.randn(8, 6), torch.randint(0, 3, (8,)), torch.randn(8, 1)
for _ in range(12):
    out = model(x)
    loss = nn.functional.cross_entropy(out["logits"], y) + nn.functional.mse_loss(out["value"], v)
    opt.zero_grad()
    loss.backward()
    opt.step()
