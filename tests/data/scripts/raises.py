"""Raises before training: a bad shape in the first forward."""

import torch
from torch import nn

model = nn.Linear(4, 2)
x = torch.randn(8, 5)


def first_step():
    return model(x)


first_step()
