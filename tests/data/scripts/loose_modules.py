"""Layers held by a plain object (no nn.Module around them), built in a function, and a list of heads."""

import torch
from torch import nn


class Net:  # not a module: two loose layers of one class
    def __init__(self):
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 2)

    def __call__(self, x):
        return self.b(torch.relu(self.a(x)))


def main():
    torch.manual_seed(0)
    net = Net()
    heads = [nn.Linear(2, 2), nn.Linear(2, 2)]
    params = [p for m in (net.a, net.b, *heads) for p in m.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.01)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    for _ in range(200):
        out = net(x)
        loss = nn.functional.cross_entropy(heads[0](out) + heads[1](out), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    main()
