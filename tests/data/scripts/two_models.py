"""Two models, two optimizers (an encoder and a decoder trained together), a sync in a helper file."""

import torch
from helpers import log_value
from torch import nn

torch.manual_seed(0)
encoder = nn.Sequential(nn.Linear(10, 6), nn.ReLU())
decoder = nn.Sequential(nn.Linear(6, 10))
opt_e = torch.optim.SGD(encoder.parameters(), lr=0.05)
opt_d = torch.optim.Adam(decoder.parameters(), lr=1e-3)
x = torch.randn(32, 10)
log = []
for _step in range(300):
    recon = decoder(encoder(x))
    loss = ((recon - x) ** 2).mean()
    opt_e.zero_grad()
    opt_d.zero_grad()
    loss.backward()
    opt_e.step()
    opt_d.step()
    log_value(log, loss)
