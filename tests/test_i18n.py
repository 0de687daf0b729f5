"""--lang zh: the catalogue covers every message in the code, ships compiled, and leaves no English sentence."""

from __future__ import annotations

import inspect
import re
import string
from pathlib import Path

import pytest

import devicelab
from devicelab.i18n import LOCALE_DIR, detect_language, normalize
from devicelab.i18n.compile import build_mo, extract, parse_po
from devicelab.i18n.templates import TEMPLATES, match

PO = LOCALE_DIR / "zh" / "LC_MESSAGES" / "devicelab.po"
ZH = {"--lang", "zh"}


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_compiled_catalogue_is_the_po_source():
    assert PO.with_suffix(".mo").read_bytes() == build_mo(parse_po(PO.read_text(encoding="utf-8"))), (
        "devicelab.mo is stale: run python -m devicelab.i18n.compile"
    )


def test_every_message_id_in_the_code_has_a_chinese_translation():
    catalogue = parse_po(PO.read_text(encoding="utf-8"))
    used = extract()
    assert len(used) > 200
    missing = {m: where for m, where in used.items() if not catalogue.get(m, "").strip("\0")}
    assert not missing, (
        f"not in {PO.name} (python -m devicelab.i18n.compile --update, then translate): {missing}"
    )
    for msgid, where in used.items():  # a translation that drops or renames a placeholder breaks .format()
        for form in catalogue[msgid].split("\0"):
            assert fields(form) == fields(msgid.split("\0")[-1]), (msgid, where)


def test_the_three_explanations_read_as_the_lesson_words_them():
    lesson = next(Path(devicelab.__file__).parents[2].glob("../shared/seed/*.txt"), None)
    catalogue = parse_po(PO.read_text(encoding="utf-8"))
    titles = [
        catalogue["the computation graph is kept, so more records mean more memory and slower steps"],
        catalogue["the cost of each .item() sync is hidden by GPU compute running alongside"],
        catalogue["the remaining-time estimate is too noisy to show the difference"],
    ]
    assert titles == ["计算图的动态释放与内存占用", "GPU 计算与 CPU 同步的重叠特性", "剩余时长的估计误差"]
    if lesson is not None:  # where the lesson itself is at hand: word for word
        text = lesson.read_text(encoding="utf-8")
        assert all(title in text for title in titles)


def test_templates_still_match_what_the_code_says():
    """Each template of a sentence built elsewhere: its longest fixed part is still in the source (or in
    argparse's), so a reworded message is noticed here instead of silently staying English."""
    import argparse

    root = Path(devicelab.__file__).parent
    sources = [p.read_text(encoding="utf-8") for p in root.rglob("*.py") if "i18n" not in p.parts]
    sources = [re.sub(r"""["']\s*\n\s*f?["']""", "", s) for s in sources]  # adjacent literals joined
    sources.append(inspect.getsource(argparse))
    for template in TEMPLATES:
        fixed = max(re.split(r"\{\w+\}", template), key=len).strip(" :;,()")
        assert any(fixed in s for s in sources), template


def test_template_matching_puts_values_back():
    _template, values = match("this torch 2.13.0+cpu is a CPU-only build and no NVIDIA driver was found")
    assert values == {"version": "2.13.0+cpu"}
    assert match("something nobody says") is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en"),
        ({"DEVICELAB_LANG": "zh"}, "zh"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"DEVICELAB_LANG": "en", "LANG": "zh_TW.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
    ],
)
def test_language_comes_from_devicelab_lang_then_the_locale(environ, expected):
    assert detect_language(environ) == expected
    assert normalize("zh-Hans") == "zh"


# ---------------------------------------------------------------- the commands' output in Chinese

# Words that may stay as they are: names, units, code, and the identifiers the tables show.
KEEP = set(
    """cpu cuda mps gpu torch numba numpy python blas openblas openmp mkl onednn oneDNN cudnn rocm nvidia driver
    item tensor detach buffer never sgd adam adamw relu gelu tanh mlp linear iris wine digits diabetes
    amd epyc intel zen authenticamd genuineintel linux fc eager fused kernel avx vnni bf fma archspec
    pip install index url https http www org com download pytorch whl get started locally
    devicelab train resume report info bench logging profile json html kb mb gib kib mib µs ms eta iqr rmse
    macs flop kflop loss item""".lower().split()
)
CODE = re.compile(r"(\S*[/\\._=]\S*|--?[\w-]+|\S*\(\S*\)\S*|\b\w*\d\w*\b)")  # paths, options, calls, numbers


def english_sentences(text: str) -> list[str]:
    """Runs of three or more English words that are not names, units or code: an untranslated sentence."""
    found = []
    for line in text.splitlines():
        words = CODE.sub(" | ", line)
        run: list[str] = []
        for token in [*re.findall(r"[A-Za-z]+|[^A-Za-z\s]", words), "|"]:
            if token.isalpha() and len(token) > 1 and token.lower() not in KEEP:
                run.append(token)
                continue
            if token.isalpha():  # a kept word or a single letter neither starts nor ends a sentence
                continue
            if len(run) >= 3:
                found.append(" ".join(run) + f"   <- {line.strip()[:120]}")
            run = []
    return found


def test_the_heuristic_finds_english_and_passes_chinese():
    assert english_sentences("the run took 0.3 s longer than expected")
    assert not english_sentences("训练 300 轮,训练集 120 行(测试集 30 行)  cpu item never  loss.item()")


def chinese(result) -> str:
    text = result.stdout + result.stderr
    assert re.search(r"[\u4e00-\u9fff]", text), text[:500]
    return text


def test_info_in_chinese(cli):
    result = cli("--lang", "zh", "info")
    assert result.returncode == 0, result.stderr
    assert english_sentences(chinese(result)) == []


def test_train_summary_and_progress_in_chinese(cli):
    result = cli(
        "train", "--lang", "zh", "--epochs", "200", "--log-every", "50", "--device", "cpu", "--threads", "1"
    )
    assert result.returncode == 0, result.stderr
    text = chinese(result)
    assert "已完成(200/200 轮)" in text and "轮次 200/200" in text
    assert english_sentences(text) == []


def test_bench_logging_verdicts_in_chinese(cli):
    result = cli(
        "bench",
        "logging",
        "--epochs",
        "100",
        "--intervals",
        "1,10,never",
        "--device",
        "cpu",
        "--repeats",
        "2",
        env={"DEVICELAB_LANG": "zh"},
    )
    assert result.returncode == 0, result.stderr
    text = chinese(result)
    for title in ("计算图的动态释放与内存占用", "GPU 计算与 CPU 同步的重叠特性", "剩余时长的估计误差"):
        assert title in text
    assert english_sentences(result.stdout) == []


def test_profile_verdict_in_chinese(cli):
    result = cli("profile", "--lang", "zh", "--steps", "5")
    assert result.returncode == 0, result.stderr
    verdict = result.stdout[result.stdout.index("瓶颈类型") :]
    assert english_sentences(verdict) == []


def test_errors_in_chinese(cli):
    result = cli("--lang", "zh", "train", "--epochs", "-1")
    assert result.returncode == 2 and result.stderr.startswith("devicelab:错误:"), result.stderr
    assert "-1" in result.stderr and english_sentences(result.stderr) == []
    result = cli("--lang", "zh", "report", "missing")
    assert result.returncode == 2 and english_sentences(result.stderr) == [], result.stderr


def test_html_report_in_chinese(cli, tmp_path):
    assert (
        cli(
            "train",
            "--epochs",
            "100",
            "--log-every",
            "50",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
            "--name",
            "r",
        ).returncode
        == 0
    )
    result = cli("report", "runs/r", "--lang", "zh", "-o", "r.html")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "lang='zh-CN'" in html and "已完成(100/100 轮)" in html
    from test_report_html import page_text

    assert english_sentences(page_text(html, skip=("style", "script", "code"))) == []


def test_json_reports_in_chinese(tmp_path):
    """The reports of info and profile JSON (written here by the library: no subprocess needed)."""
    from devicelab.i18n import set_language
    from devicelab.report.html import render_info, render_profile
    from test_report_html import page_text

    info = {
        "cpu": {
            "model_name": "AMD EPYC",
            "base_mhz": None,
            "missing": {"base_mhz": "not in sysfs or the brand string"},
            "archspec_notes": ["zen5 requires features not available on the host: pku"],
            "hypervisor": True,
        },
        "software": {"torch": "2.13.0+cpu"},
        "gpus": [],
        "doctor": {
            "findings": [
                {
                    "problem": "this torch 2.13.0+cpu is a CPU-only build and no NVIDIA driver was found",
                    "fix": "with an NVIDIA GPU and driver, install a CUDA build: pip install torch "
                    "(pick the CUDA version at https://pytorch.org)",
                }
            ]
        },
    }
    profile = {
        "workload": {"dataset": "iris", "step": "plain SGD step: autograd.grad + one foreach update (x.y)"},
        "regime": {
            "verdict": "overhead-bound",
            "fixed_share": 0.9,
            "fixed_s": 9e-5,
            "work_growth": 64.0,
            "time_growth": 5.0,
            "points": [],
            "suggestions": ["more work per step costs almost nothing"],
        },
    }
    set_language("zh")
    try:
        pages = [render_info(info), render_profile(profile)]
    finally:
        set_language(None)
    for html in pages:
        assert english_sentences(page_text(html, skip=("style", "script", "code"))) == []


def test_the_locale_decides_when_nothing_else_does(cli):
    locale = {"DEVICELAB_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"}
    assert cli("report", "missing", env=locale).stderr.startswith("devicelab:错误:")
    assert cli("report", "missing", "--lang", "en", env=locale).stderr.startswith("devicelab: error:")


def test_a_users_column_names_stay_as_written_in_chinese():
    """A column called "size" or "share" (words the catalogue translates as headers) is a name: kept as the
    user wrote it in a translated sentence or hint; the sentence's own words are translated."""
    from devicelab.i18n import set_language, translate

    set_language("zh")
    try:
        hint = translate("rename 'sizes' to 'size'? it has: order_id, sizes, share, label")
        assert hint == "把 'sizes' 改名为 'size'?文件中的列:order_id, sizes, share, label"
        error = translate("new.csv lacks the feature column(s) size, share that run runs/r was trained on")
        assert error == "new.csv 缺少运行 runs/r 训练时使用的特征列 size, share"
        assert translate("numbers; thousands separator ',' removed; '$' stripped") == (
            "数值;去掉千位分隔符 ',';去掉 '$'"
        )
    finally:
        set_language("en")
