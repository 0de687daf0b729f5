"""Inference only: no backward, no optimizer; each call of the model is a step."""

import torch
from torch import nn

model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
batches = [torch.randn(8, 16) for _ in range(300)]
predictions = []
with torch.no_grad():
    for batch in batches:
        predictions.append(model(batch).argmax(dim=1).tolist())
print(len(predictions))
