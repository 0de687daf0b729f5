"""--lang zh on a user's file: every line train, predict and sweep print, and both HTML reports, in Chinese.

A line fails when it holds a run of three or more English words that are not names, units, options or code
(``test_i18n.english_sentences``), so a sentence added later without a translation is caught; the failure
lists every such line, with the command that printed it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from conftest import run_cli
from test_i18n import english_sentences

ZH = {"DEVICELAB_LANG": "zh"}
CPU1 = ("--device", "cpu", "--threads", "1")


def shop_csv(n: int = 80) -> str:
    """Numbers with gaps, a category with gaps, a date, an ID, numbers as a spreadsheet exports them
    (thousands separators, a currency, percentages), text labels, and a row without a label."""
    lines = ["order_id,size,city,placed,price,share,label"]
    for i in range(n):
        size = "" if i % 9 == 0 else str(10 + (i * 7) % 50)
        city = "" if i % 11 == 0 else ("paris", "rome", "oslo")[i % 3]
        label = "" if i == 5 else ("small" if (10 + (i * 7) % 50) < 35 else "large")
        price, share = f'"${1000 + i * 37:,}.50"', f"{i % 90}%"
        lines.append(
            f"A{1000 + i},{size},{city},2024-{1 + i % 12:02d}-{1 + i % 28:02d},{price},{share},{label}"
        )
    return "\n".join(lines) + "\n"


class _Nodes(HTMLParser):
    """Each text node a reader sees (styles, scripts and code left out), one per line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("style", "script", "code")

    def handle_endtag(self, tag):
        self.skip -= tag in ("style", "script", "code")

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.lines.append(data.strip())


def html_lines(html: str) -> str:
    parser = _Nodes()
    parser.feed(html)
    return "\n".join(parser.lines)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """What each command printed (stdout and stderr) and each report's text, under --lang zh."""
    folder = tmp_path_factory.mktemp("zh")
    (folder / "shop.csv").write_text(shop_csv())
    (folder / "new.csv").write_text(
        "order_id,size,city,placed,price,share,label\n"
        'B1,12,lima,2024-03-04,"$1,020.50",5%,small\nB2,,,2024-05-06,"$2,310.50",7%,large\n'
    )
    runs = {
        "train": ("train", "--data", "shop.csv", "--target", "label", "--val-size", "0.15", "--epochs", "40", "--log-every", "10",
                  *CPU1, "--name", "r"),
        "predict": ("predict", "runs/r", "--data", "new.csv"),
        "sweep": ("sweep", "--data", "shop.csv", "--target", "label", "--lr", "0.01,0.1", "--seeds", "0",
                  "--epochs", "20", *CPU1, "--name", "s"),
        "report run": ("report", "runs/r", "-o", "r.html"),
        "report sweep": ("report", "runs/s", "-o", "s.html"),
    }  # fmt: skip
    texts = {}
    for name, args in runs.items():
        result = run_cli(*args, cwd=folder, env=ZH)
        assert result.returncode == 0, (name, result.stderr)
        texts[name] = result.stdout + result.stderr
    texts["run.html"] = html_lines((folder / "r.html").read_text(encoding="utf-8"))
    texts["sweep.html"] = html_lines((folder / "s.html").read_text(encoding="utf-8"))
    return texts


def test_every_line_of_a_file_run_is_in_chinese(outputs):
    untranslated = [f"{name}: {found}" for name, text in outputs.items() for found in english_sentences(text)]
    assert not untranslated, "untranslated English under --lang zh:\n" + "\n".join(untranslated)


# English words that once passed between Chinese ones (a date's parts, a metric's name): alone, each is too
# short to be a sentence, so they are looked for by name (the file's column names hold none of them)
ENGLISH_WORDS = re.compile(r"\b(year|month|day|weekday|hour|minute|accuracy|loss|rmse|validation|rows?)\b")


def test_no_english_word_between_chinese_ones(outputs):
    found = [f"{name}: {line}" for name, text in outputs.items() for line in text.splitlines()
             if ENGLISH_WORDS.search(line)]  # fmt: skip
    assert not found, "English words under --lang zh:\n" + "\n".join(found)


def test_the_lines_that_were_english_say_it_in_chinese(outputs):
    """The role table, the rows line, the early-stopping line, predict's counts, the sweep's lines."""
    train, predict, sweep = outputs["train"], outputs["predict"], outputs["sweep"]
    assert re.search(r"从 shop 读取 80 行.*已丢弃:1 行没有目标值", train)
    table = {line.split()[0]: line for line in train.splitlines() if line.split()}
    assert table["列"].split()[1:3] == ["角色", "缺失"]
    assert "已丢弃" in table["order_id"] and "ID(每行唯一)" in table["order_id"]
    assert "数值" in table["size"] and "缺失 -> 中位数" in table["size"]
    assert "独热编码" in table["city"] and "缺失 -> 单独一类" in table["city"]
    assert "日期/时间 -> 月, 日, 星期几" in table["placed"]
    assert "数值;去掉千位分隔符 ',';去掉 '$'" in table["price"]
    assert "'%' -> 小数(39% = 0.39)" in table["share"]
    assert "分类:2 个类别" in table["label"] and "丢弃了 1 行没有目标值的行" in table["label"]
    assert "提前停止:" in train and "耐心值" in train
    assert re.search(r"2 条预测\(对照文件中的目标列,准确率 [01]\.\d{4}\)", predict)
    assert "city:2 个单元格中有 1 个是训练中未见过的类别" in predict
    assert "size:2 个单元格中有 1 个缺失或不是数字,已用训练集中位数" in predict
    assert "扫描 2 个模型(1 种结构)" in sweep and "从 shop 读取 80 行" in sweep and "列        角色" in sweep
    assert re.search(r"排序依据: +最终验证集 准确率", sweep)
    assert re.search(r"小数据: +按 10 行验证集排序,在这么少的行上准确率的标准误最高可达 ±0\.16", sweep)
    assert "扫描 2 个模型(1 种结构)" in sweep and "名次  模型" in sweep and "扫描文件夹:" in sweep
    assert "排行榜" in outputs["sweep.html"] and "学习率" in outputs["sweep.html"]
    assert "列" in outputs["run.html"].splitlines() and "验证损失(记录点)" in outputs["run.html"]
