"""The lesson's program (../shared/seed/, "python训练营day34"), copied as a reference.

Only what a test needs was changed: the code is wrapped in functions, the device and the epoch count
are parameters, ``torch.manual_seed`` fixes the initial weights, and the print and the plot are gone.
The data preparation, the model, the loss, the optimizer and the training loop (``loss.item()`` every
step) are the lesson's, line for line.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.optim as optim
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler


def lesson_data(device):
    # 加载鸢尾花数据集
    iris = load_iris()
    X = iris.data  # 特征数据
    y = iris.target  # 标签数据
    # 划分训练集和测试集
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    # 归一化数据
    scaler = MinMaxScaler()
    X_train = scaler.fit_transform(X_train)
    X_test = scaler.transform(X_test)
    # 将数据转换为PyTorch张量并移至GPU
    X_train = torch.FloatTensor(X_train).to(device)
    y_train = torch.LongTensor(y_train).to(device)
    X_test = torch.FloatTensor(X_test).to(device)
    y_test = torch.LongTensor(y_test).to(device)
    return X_train, y_train, X_test, y_test


class MLP(nn.Module):
    def __init__(self):
        super(MLP, self).__init__()  # noqa: UP008 (the lesson's spelling)
        self.fc1 = nn.Linear(4, 10)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)
        return out


def lesson_model(device, seed: int = 42) -> MLP:
    torch.manual_seed(seed)  # added: fixes the initial weights
    return MLP().to(device)


def _silent(line: str) -> None:
    return None


def lesson_train(model, X_train, y_train, num_epochs: int, log=_silent) -> tuple[list[float], float]:
    """The lesson's loop; returns ``(losses, training seconds)``. ``log`` stands in for ``print``."""
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    losses = []
    start_time = time.time()
    for epoch in range(num_epochs):
        # 前向传播
        outputs = model(X_train)
        loss = criterion(outputs, y_train)
        # 反向传播和优化
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # 记录损失值
        losses.append(loss.item())
        # 打印训练信息
        if (epoch + 1) % 100 == 0:
            log(f"Epoch [{epoch + 1}/{num_epochs}], Loss: {loss.item():.4f}")
    time_all = time.time() - start_time
    return losses, time_all


def run_lesson(num_epochs: int, device: str = "cpu", seed: int = 42) -> tuple[list[float], MLP]:
    X_train, y_train, _, _ = lesson_data(device)
    model = lesson_model(device, seed)
    losses, _ = lesson_train(model, X_train, y_train, num_epochs)
    return losses, model
