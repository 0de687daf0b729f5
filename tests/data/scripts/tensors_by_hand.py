"""The tutorial's "tensors and autograd" loop: no module, no optimizer, the update in torch.no_grad."""

import torch

torch.manual_seed(0)
x, y = torch.randn(32, 10), torch.randn(32, 2)
w1 = torch.randn(10, 16, requires_grad=True)
w2 = torch.randn(16, 2, requires_grad=True)
for _t in range(30):
    loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        w1 -= 1e-4 * w1.grad
        w2 -= 1e-4 * w2.grad
        w1.grad.zero_()
        w2.grad.zero_()
