"""A tiny transformer encoder, evaluated under torch.no_grad every 5 steps inside the loop."""

import torch
from torch import nn

torch.manual_seed(0)
layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True, dropout=0.0)
model = nn.Sequential(nn.Linear(8, 32), nn.TransformerEncoder(layer, num_layers=2), nn.Linear(32, 1))
x, y = torch.randn(16, 10, 8), torch.randn(16, 10, 1)
x_val = torch.randn(16, 10, 8)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
criterion = nn.MSELoss()
history = []
for step in range(400):
    model.train()
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    history.append(loss.detach())
    if step % 5 == 0:
        model.eval()
        with torch.no_grad():
            val = model(x_val).pow(2).mean()
        history.append(val)
print(f"last loss {torch.stack(history[-2:]).tolist()}")
