"""``--lang zh``: the advice and the regime of a watched program are said in Chinese on the screen (the
record and its JSON keep the English sentences), each value put back where the sentence has it."""

from __future__ import annotations

import torch

import devicelab
from devicelab.i18n import set_language
from devicelab.profile import advice
from test_i18n import english_sentences


def _watched():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.rand(120, 4), torch.randint(0, 3, (120,))
    losses = []
    with devicelab.watch(warmup=1, steps=4) as w:
        for _ in range(20):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if loss.detach() > 100:  # bool(tensor): another kind, another fix
                break
    return w.report()


def test_advice_and_regime_in_chinese_keep_their_values():
    report = _watched()
    english = str(report)
    # the two sync tips rank by their measured wait, which noise can swap: pick the .item() one by its kind
    (sync_tip,) = [a for a in report.advice if a.finding.startswith("defer the .item() at ")]
    where = sync_tip.finding.removeprefix("defer the .item() at ").split(": ")[0]
    assert where.endswith(f"test_profile_advice_zh.py:{_watched.__code__.co_firstlineno + 12}")
    set_language("zh")
    try:
        chinese = str(report)
    finally:
        set_language("en")
    advice_zh = chinese[chinese.index("瓶颈类型") :]
    assert english_sentences(advice_zh) == []
    assert f"推迟 {where} 处的 .item():把值留在设备上" in advice_zh  # the line, the kind, the fix
    assert "每步 1 次同步" in advice_zh and "bool(tensor)" in advice_zh
    assert report.regime.regime in (advice.OVERHEAD, advice.MIXED, advice.COMPUTE)
    assert "GFLOP/s" in advice_zh and english != chinese
    assert sync_tip.finding in [a["finding"] for a in report.to_dict()["advice"]]  # the JSON stays English
