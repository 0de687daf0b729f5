"""A DataLoader loop over a TensorDataset, reading its own options from sys.argv."""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    print(f"argv: epochs={args.epochs} workers={args.workers}")
    torch.manual_seed(0)
    x, y = torch.randn(256, 8), torch.randint(0, 4, (256,))
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, num_workers=args.workers)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(inplace=True), nn.Linear(32, 4))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    device = torch.device("cpu")
    for epoch in range(args.epochs):
        total = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        if epoch % 10 == 0:
            print(f"epoch {epoch}: {total / len(x):.4f}")


if __name__ == "__main__":
    main()
