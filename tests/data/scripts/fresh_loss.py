"""A loss module made anew each step, ReduceLROnPlateau reading the loss, and an end in mid-window."""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2)
x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
steps = 0
for _ in range(13):
    loss = nn.CrossEntropyLoss()(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    plateau.step(loss)  # float(loss) inside torch: a sync at this line on a GPU
    steps += 1
model(x)  # one more forward after the last step: not a step of its own
print("steps", steps)
