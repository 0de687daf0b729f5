"""Templates of sentences that other modules build with f-strings (reasons, findings, error messages),
so that ``devicelab.i18n.translate`` can say them in another language without those modules changing.

Each template is the English sentence with ``{name}`` where the f-string puts a value; a sentence that no
longer matches any template (its wording changed) is shown in English, never garbled. A test checks each
template's fixed words still occur in the source.
"""

from __future__ import annotations

import re
import string
from functools import cache

from devicelab.i18n import N_

TEMPLATES = (
    # training: the device choice and the step (devicelab.training.device_choice, devicelab.fast)
    N_("{device}: timed this workload per epoch: {timings}; {rule}"),
    N_("one thread unless more are at least {factor}x faster (safer on a shared CPU)"),
    N_("fused numba kernel ({model}, {flops} a step)"),
    N_("eager step: {reason}"),
    # training: the linear baseline's advice (devicelab.training.baseline)
    N_(
        "a linear model ({model}) scores {metric} {theirs} on the same test rows, {lead} above devicelab's "
        "{ours} (noise ±{noise}); try --optimizer adam --lr 0.003, a smaller --hidden with --weight-decay "
        "1e-3, or, on few rows, the linear model itself"
    ),
    N_("{reason}, so it is no MLP a fast path takes"),
    N_("the model has {layer}"),
    N_("keep the value on the device ({code}) and read it at log points"),  # profile.advice: the user's line
    N_(
        "the model gives {outputs} scores a row and the target has {classes} classes: scores {first} and up are "
        "never a row's target, and predict labels a row with its best known class; make the last layer output "
        "{values} values unless that is meant"
    ),
    N_("torch.func cannot vmap the module ({error})"),
    N_(  # devicelab.training.user_model: a --model file with a training script's top level
        "{file} runs code when it is imported (line {line}: {code}), and devicelab imports it to build the "
        'model, so that runs too; put it under if __name__ == "__main__":'
    ),
    # hardware probes: why a field could not be read; doctor findings
    N_("this torch {version} is a CPU-only build and no NVIDIA driver was found"),
    N_("with an NVIDIA GPU and driver, install a CUDA build: {command} (pick the CUDA version at {url})"),
    N_("install the standard macOS wheel (pip install torch), which has MPS on Apple silicon"),
    N_("CUDA_VISIBLE_DEVICES={value} hides every GPU from torch"),
    N_("unset CUDA_VISIBLE_DEVICES or set it to the GPU indices to use (e.g. 0)"),
    N_("torch {version} was built for CUDA {cuda} but no NVIDIA driver or GPU was found ({error})"),
    N_("install the NVIDIA driver (nvidia-smi must list the GPU); in a container, start it with --gpus all"),
    N_(
        "the NVIDIA driver {driver} supports CUDA up to {driver_cuda}, but this torch was built for CUDA {cuda}"
    ),
    N_("upgrade the NVIDIA driver, or install a torch built for CUDA {cuda} or older ({url})"),
    N_("NVML sees {names} but torch cannot initialise CUDA"),
    N_("check nvidia-smi, that the nvidia-uvm kernel module is loaded, and the device permissions"),
    N_(
        "{device} {name} (compute capability {cc}) is not in this torch's arch list ({arch_list}): its kernels "
        "will not run"
    ),
    N_("install a torch build that ships kernels for it (a newer CUDA or ROCm wheel, {url})"),
    N_("{target} requires features not available on the host: {features}"),
    N_("not in sysfs or the brand string"),
    N_("no NVIDIA driver found through NVML"),
    N_("plain SGD step: autograd.grad + one foreach update ({where})"),
    N_("no cpufreq in sysfs, common in virtual machines"),
    N_("not measured (run with --measure)"),
    N_("this system has no CPU affinity mask (macOS)"),
    N_("no cgroup CPU controller found (not Linux, or not mounted)"),
    N_("{label}: asked for"),
    N_("{label}: the only device here"),
    N_("{label}: as before the resume"),
    N_("{factor}x faster than {label}"),
    N_("{n} threads are {factor}x faster than 1"),
    # argparse's errors (UserErrors are extracted from the code into the catalogue: see compile.py)
    N_("argument {option}: invalid choice: {value} (choose from {choices})"),
    N_("argument {option}: invalid {kind} value: {value}"),
    N_("argument {option}: expected one argument"),
    N_("unrecognized arguments: {arguments}"),
    N_("the following arguments are required: {arguments}"),
    # train's warning (devicelab.training.result.RunResult.overfitting)
    N_(
        "validation loss {val} vs training loss {train} at epoch {epoch}: the model fits the training rows much "
        "better than new ones (overfitting); try --weight-decay 1e-4, a smaller --hidden, or fewer --epochs"
    ),
    # profile's suggestions (devicelab.profile.regime.suggestions)
    N_(
        "use one CPU thread (--threads 1, or torch.set_num_threads(1)): with {n} threads every tiny operator "
        "pays for waking and joining the others"
    ),
    N_("capture the whole step in a CUDA graph (torch.cuda.graphs): one launch replays every kernel"),
    N_("try --device cpu: a step this small may not need a GPU at all"),
    N_("use a larger batch (more rows per step, fewer steps): {room}"),
    N_("the growing part of the step only catches up with the fixed cost at about ×{factor} this work"),
    N_("more work per step costs almost nothing"),
    N_(
        "train several models at once (torch.func.stack_module_state + vmap: a sweep of seeds or learning rates "
        "in about the time of one model)"
    ),
    N_(
        "time follows the work: do less of it or do it faster (bf16/fp16 autocast, TF32 on GPUs, a smaller "
        "model, a faster device)"
    ),
    N_("{device} ({n} thread)"),
    N_("{device} ({n} threads)"),
    # the role table's "what devicelab does" (devicelab.data.columns.infer_role, .describe, .dataset); a
    # detail is its role's words, then "; " or ", " and what the encoding added, each part matched alone
    N_("{n} text cell(s) such as {example} taken as missing"),
    N_("constant ({value})"),
    N_("ID ({levels} distinct in {present} rows)"),
    N_("free text ({levels} distinct in {present} rows)"),
    N_("{levels} levels (--categorical)"),
    N_("{levels} levels"),
    N_("embedding {size}"),
    N_("missing -> median {median} + indicator"),
    N_("{task} (inferred; --task {other} to change): {n} classes ({classes})"),
    N_("classification: {n} classes ({classes})"),
    N_("{what}; {n} row(s) without a target dropped"),
    # where the training rows live (devicelab.training.stream)
    N_(
        "streamed from pinned host memory: the training rows ({size}) exceed {share} of {device}'s free memory "
        "({free})"
    ),
    # the sweep's layout (devicelab.sweep.layouts)
    N_("batched matmuls (baddbmm) on {device}"),
    N_("batched matmuls: numba could not compile the kernel ({error})"),
    # the advice and regime of a watched program (devicelab.profile.advice)
    N_("defer the {kind} at {where}: {fix}"),
    N_("{count}, ~{wait} µs of {step} µs here; on a GPU each waits for all queued work"),
    N_("{count}, ~{wait} µs of {step} µs"),
    N_("{n} sync a step"),
    N_("{n} syncs a step"),
    N_("data takes {share} of the step"),
    N_("evaluation under no_grad takes {share} of the step"),
    N_("use one CPU thread (torch.set_num_threads(1)): tiny operators pay for waking {n} threads"),
    N_("the host waits in syncs {wait} µs of the {step} µs step"),
    N_("loading and copying data takes {share} of the step"),
    N_("{rate} GFLOP/s reached, {share} of the device's {peak} GFLOP/s"),
    # the role table: how a column's numbers were written (devicelab.data.numbers.NumberFormat.describe)
    N_("thousands separator {sep} removed"),
    N_("{symbols} stripped"),
    # predict's hint when a feature column is missing (devicelab.training.predict): the names stay as written
    N_("it has: {columns}"),
    N_("rename {old} to {new}? {rest}"),
)
WORDS = (  # whole details and parts of them that hold no value
    N_("numbers"),
    N_("empty"),
    N_("row numbers (1, 2, 3, ... in the first column)"),
    N_("row names (unique, first column)"),
    N_("ID (unique per row)"),
    N_("free text (unique per row)"),
    N_("constant date"),
    N_("date/time"),
    N_("no varying part"),
    N_("decimal comma"),
    N_("'%' -> fraction (39% = 0.39)"),
    # the parts a date/time column becomes (devicelab.data.transforms.DATE_PARTS)
    N_("year"),
    N_("month"),
    N_("day"),
    N_("weekday"),
    N_("hour"),
    N_("minute"),
    N_("one-hot"),
    N_("unseen levels -> unknown"),
    N_("missing -> its own level"),
    N_("--ignore"),
    N_("not in --features"),
    N_("regression (inferred; --task classification to change)"),
    N_("regression"),
    N_("classification"),
    N_("the fused kernel runs on one thread, so no thread count was timed"),  # training.device_choice
    N_("numba kernel, the models side by side in SIMD lanes"),  # sweep.layouts
    N_("streamed from host memory: asked for"),  # training.stream
    # the advice of a watched program (devicelab.profile.advice): fixes, whole findings, regimes
    N_("keep the value on the device (losses.append(loss.detach())) and read it at log points"),
    N_("copy to the host only at log points, many values at once"),
    N_("decide on the device (torch.where) or check less often"),
    N_("keep the value on the device and read it at log points"),
    N_("print only at log points"),
    N_("move it out of the step or to a log point"),
    N_(
        "load data ahead of the step: DataLoader(num_workers=..., pin_memory=True), or keep the rows on the device"
    ),
    N_("evaluate less often"),
    N_("capture the step in a CUDA graph (torch.cuda.graphs), or train on the CPU"),
    N_("use a larger batch (more rows per step, fewer steps): the step's time is fixed cost"),
    N_("the layers' arithmetic is unknown: no rate to compare"),
    N_("sync-bound"),
    N_("input-bound"),
    N_("compute-bound"),
)


FIELDS = {"n": r"-?[\d.,]+", "sep": r"'[^']*'", "symbols": r"'[^']*'(?:, '[^']*')*"}


def _pattern(template: str) -> re.Pattern:
    """The template as a regular expression: ``{n}`` is a number, ``{sep}`` one quoted value and
    ``{symbols}`` a list of them (so "numbers; ...; '$' stripped" is a list of parts, not one sentence
    ending in "stripped"), any other field any text."""
    regex, seen = "", set()
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        regex += re.escape(literal)
        if name is not None:
            value = FIELDS.get(name, ".+?")
            regex += f"(?P={name})" if name in seen else f"(?P<{name}>{value})"
            seen.add(name)
    return re.compile(regex, re.DOTALL)


NAMES = {"code", "columns", "old", "new", "sep", "symbols"}  # the user's names, cells and code, as written


def option_values(template: str) -> set[str]:
    """The fields of ``template`` that follow an option (``--task {other}``): values a user types, and
    the fields in ``NAMES`` (a column called "size" stays "size", not 规模): never translated."""
    return {
        name
        for literal, name, _spec, _conversion in string.Formatter().parse(template)
        if name is not None and (name in NAMES or re.search(r"--[\w-]+ $", literal))
    }


def _fixed(template: str) -> int:
    return sum(len(literal) for literal, *_ in string.Formatter().parse(template))


@cache
def _patterns(lang: str) -> tuple[tuple[str, re.Pattern], ...]:
    """The templates above, plus the error messages of the catalogue (``{v0}``... ids, extracted from every
    ``UserError(...)`` by ``devicelab.i18n.compile``); the most specific (most fixed characters) first."""
    from devicelab.i18n import _translations

    catalogue = getattr(_translations(lang), "_catalog", {})
    errors = [k for k in catalogue if isinstance(k, str) and "{v0}" in k]
    ordered = sorted(dict.fromkeys([*TEMPLATES, *errors]), key=lambda t: -_fixed(t))
    return tuple((t, _pattern(t)) for t in ordered)


def match(text: str) -> tuple[str, dict[str, str]] | None:
    from devicelab.i18n import language

    for template, pattern in _patterns(language()):
        found = pattern.fullmatch(text)
        if found:
            return template, found.groupdict()
    return None
