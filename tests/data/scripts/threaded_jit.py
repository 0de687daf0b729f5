"""A TorchScript model trained in a worker thread."""

import threading

import torch
from torch import nn

model = torch.jit.script(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(16, 4), torch.randn(16, 1)
done = []


def train():
    for _ in range(20):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        done.append(1)


worker = threading.Thread(target=train)
worker.start()
worker.join()
print("steps", len(done))
