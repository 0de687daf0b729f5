"""Changes folder, then trains; prints nothing (its stdout is the report's when --json has no FILE)."""

import os
import sys

import torch

os.makedirs("work", exist_ok=True)
os.chdir("work")
w = torch.zeros(3, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
    opt.zero_grad()
    (w - 1).pow(2).sum().backward()
    opt.step()
