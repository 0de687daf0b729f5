"""A tee logger in place of sys.stdout, warnings as errors, a model that returns a dict."""

import sys
import warnings

import torch
from torch import nn


class Tee:
    def __init__(self, path):
        self.file = open(path, "w")
        self.console = sys.stdout

    def write(self, text):
        self.file.write(text)
        self.console.write(text)

    def flush(self):
        self.file.flush()
        self.console.flush()


sys.stdout = Tee("train.log")
warnings.simplefilter("error")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 2)

    def forward(self, x):
        return {"out": self.l(x)}


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
x = torch.randn(8, 4)
for _i in range(12):
    opt.zero_grad()
    net(x)["out"].pow(2).mean().backward()
    opt.step()
print("trained")
sys.stdout.file.close()  # its log closed, sys.stdout still the logger: writing to it now would fail
