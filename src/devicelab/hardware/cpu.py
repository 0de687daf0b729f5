"""The CPU: name, vendor, generation, cores, frequency, caches and the ISA that matters for deep learning.

Read without py-cpuinfo (which takes about a second): /proc/cpuinfo and sysfs on Linux, ``sysctl`` on macOS,
PowerShell CIM (``Get-CimInstance Win32_Processor``; ``wmic`` is gone) on Windows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from devicelab.hardware import cpu_tables
from devicelab.hardware.probes import Probes
from devicelab.hardware.report import Cache, CpuInfo

# Feature flag (Linux /proc/cpuinfo spelling) -> the label shown, in display order.
DL_ISA: dict[str, str] = {
    "fma": "FMA",
    "avx2": "AVX2",
    "avx_vnni": "AVX-VNNI",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "avx512_fp16": "AVX-512 FP16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "amx_fp16": "AMX-FP16",
    "asimd": "NEON",
    "asimdhp": "NEON FP16",
    "asimddp": "DOTPROD",
    "bf16": "BF16",
    "i8mm": "I8MM",
    "sve": "SVE",
    "sve2": "SVE2",
    "sme": "SME",
}

# macOS sysctl hw.optional keys -> the Linux flag with the same meaning.
DARWIN_ARM_FLAGS = {
    "hw.optional.neon": "asimd",
    "hw.optional.arm.FEAT_FP16": "asimdhp",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_SME": "sme",
}
DARWIN_KEYS = (
    "machdep.cpu.brand_string",
    "machdep.cpu.vendor",
    "machdep.cpu.family",
    "machdep.cpu.model",
    "machdep.cpu.stepping",
    "machdep.cpu.features",
    "machdep.cpu.leaf7_features",
    "hw.cpufrequency",
    "hw.cpufrequency_max",
    "hw.l1dcachesize",
    "hw.l1icachesize",
    "hw.l2cachesize",
    "hw.l3cachesize",
    *DARWIN_ARM_FLAGS,
)
WINDOWS_CIM = (
    "Get-CimInstance Win32_Processor | Select-Object -First 1 Name,Manufacturer,Caption,"
    "NumberOfCores,NumberOfLogicalProcessors,MaxClockSpeed,L2CacheSize,L3CacheSize | ConvertTo-Json"
)


@dataclass
class RawCpu:
    """What one operating system's probe could read, before the shared interpretation."""

    model_name: str | None = None
    vendor: str | None = None
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    arm_implementer: int | None = None
    arm_part: int | None = None
    flags: frozenset[str] | None = None  # None = not readable on this OS
    base_mhz: float | None = None
    max_mhz: float | None = None
    caches: tuple[Cache, ...] = ()
    missing: dict[str, str] = field(default_factory=dict)


def _int(text: str | None, base: int = 10) -> int | None:
    try:
        return int(text.strip(), base) if text is not None else None
    except ValueError:
        return None


def parse_size(text: str) -> int | None:
    """'48K', '2048K', '32 MB', '1M' -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)B?\s*", text, re.IGNORECASE)
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2).upper()]


def parse_proc_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's ``key: value`` block of /proc/cpuinfo (Arm kernels put some keys after it)."""
    data: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if data and "processor" in data and ("flags" in data or "Features" in data):
                break
            continue
        data.setdefault(key.strip(), value.strip())
    return data


def brand_ghz(model_name: str | None) -> float | None:
    """The nominal clock in an Intel brand string ('... CPU @ 2.60GHz'), in MHz."""
    match = re.search(r"@\s*([\d.]+)\s*GHz", model_name or "")
    return float(match.group(1)) * 1000 if match else None


def linux_caches(read_file: Callable[[str], str | None]) -> tuple[Cache, ...]:
    caches = []
    for index in range(8):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{index}/"
        level, kind, size = (read_file(base + name) for name in ("level", "type", "size"))
        if level is None or size is None:
            break
        size_bytes = parse_size(size)
        if size_bytes is not None:
            caches.append(Cache(int(level), (kind or "unified").strip().lower(), size_bytes))
    return tuple(caches)


def read_linux(probes: Probes) -> RawCpu:
    text = probes.read_file("/proc/cpuinfo")
    if text is None:
        return RawCpu(missing={"model_name": "/proc/cpuinfo is not readable"})
    info = parse_proc_cpuinfo(text)
    flags = info.get("flags", info.get("Features"))
    khz = {
        name: _int(probes.read_file(f"/sys/devices/system/cpu/cpu0/cpufreq/{name}"))
        for name in ("base_frequency", "cpuinfo_max_freq")
    }
    model_name = info.get("model name") or info.get("Processor") or info.get("Hardware")
    raw = RawCpu(
        model_name=model_name,
        vendor=info.get("vendor_id"),
        family=_int(info.get("cpu family")),
        model=_int(info.get("model")),
        stepping=_int(info.get("stepping")),
        arm_implementer=_int(info.get("CPU implementer"), 16),
        arm_part=_int(info.get("CPU part"), 16),
        flags=frozenset(flags.split()) if flags is not None else None,
        base_mhz=khz["base_frequency"] / 1000 if khz["base_frequency"] else brand_ghz(model_name),
        max_mhz=khz["cpuinfo_max_freq"] / 1000 if khz["cpuinfo_max_freq"] else None,
        caches=linux_caches(probes.read_file),
    )
    if raw.max_mhz is None:
        raw.missing["max_mhz"] = "no cpufreq in sysfs, common in virtual machines"
    return raw


def parse_sysctl(text: str) -> dict[str, str]:
    data = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            data[key.strip()] = value.strip()
    return data


def read_darwin(probes: Probes) -> RawCpu:
    text = probes.run(["sysctl", "-i", *DARWIN_KEYS]) or probes.run(["/usr/sbin/sysctl", "-i", *DARWIN_KEYS])
    if text is None:
        return RawCpu(missing={"model_name": "sysctl did not answer"})
    data = parse_sysctl(text)
    x86_flags = " ".join(data.get(k, "") for k in ("machdep.cpu.features", "machdep.cpu.leaf7_features"))
    flags = {f.lower() for f in x86_flags.split()}
    flags |= {flag for key, flag in DARWIN_ARM_FLAGS.items() if data.get(key) == "1"}
    hz = {k: _int(data.get(k)) for k in ("hw.cpufrequency", "hw.cpufrequency_max")}
    caches = tuple(
        Cache(level, kind, size)
        for key, level, kind in (
            ("hw.l1dcachesize", 1, "data"),
            ("hw.l1icachesize", 1, "instruction"),
            ("hw.l2cachesize", 2, "unified"),
            ("hw.l3cachesize", 3, "unified"),
        )
        if (size := _int(data.get(key)))
    )
    raw = RawCpu(
        model_name=data.get("machdep.cpu.brand_string"),
        vendor=data.get("machdep.cpu.vendor") or ("Apple" if "Apple" in text else None),
        family=_int(data.get("machdep.cpu.family")),
        model=_int(data.get("machdep.cpu.model")),
        stepping=_int(data.get("machdep.cpu.stepping")),
        flags=frozenset(flags),
        base_mhz=hz["hw.cpufrequency"] / 1e6 if hz["hw.cpufrequency"] else None,
        max_mhz=hz["hw.cpufrequency_max"] / 1e6 if hz["hw.cpufrequency_max"] else None,
        caches=caches,
    )
    if raw.max_mhz is None:
        raw.missing["max_mhz"] = "macOS does not report clocks on Apple silicon"
    return raw


def _cim_object(text: str | None) -> dict | None:
    """The first object of PowerShell's ``ConvertTo-Json`` output, or None when there is none."""
    try:
        data = json.loads(text or "null")
    except ValueError:  # a PowerShell error or banner instead of JSON
        return None
    data = data[0] if isinstance(data, list) and data else data
    return data if isinstance(data, dict) else None


def read_windows(probes: Probes) -> RawCpu:
    text = probes.run(["powershell", "-NoProfile", "-NonInteractive", "-Command", WINDOWS_CIM])
    data = _cim_object(text)
    if data is None:
        return RawCpu(
            missing={"model_name": "PowerShell Get-CimInstance Win32_Processor gave no JSON object"}
        )
    caption = re.search(r"Family (\d+) Model (\d+) Stepping (\d+)", data.get("Caption") or "")
    kib = {k: data.get(k) for k in ("L2CacheSize", "L3CacheSize")}
    caches = tuple(
        Cache(level, "unified", int(kib[key]) << 10)
        for key, level in (("L2CacheSize", 2), ("L3CacheSize", 3))
        if kib[key]
    )
    return RawCpu(
        model_name=(data.get("Name") or "").strip() or None,
        vendor=data.get("Manufacturer"),
        family=int(caption.group(1)) if caption else None,
        model=int(caption.group(2)) if caption else None,
        stepping=int(caption.group(3)) if caption else None,
        base_mhz=float(data["MaxClockSpeed"]) if data.get("MaxClockSpeed") else None,
        caches=caches,
        missing={
            "max_mhz": "Windows reports only the base clock",
            "isa": "Windows has no feature-flag list; see torch_cpu_capability",
        },
    )


READERS: dict[str, Callable[[Probes], RawCpu]] = {
    "Linux": read_linux,
    "Darwin": read_darwin,
    "Windows": read_windows,
}


def isa_labels(flags: frozenset[str]) -> tuple[str, ...]:
    return tuple(label for flag, label in DL_ISA.items() if flag in flags)


def _why_not(target, vendor: str, flags: frozenset[str]) -> str:
    """archspec's own wording (archspec.cpu.why_not) for a target this CPU's flags do not reach."""
    if target.vendor not in (vendor, "generic"):
        return f"{target.name} targets vendor {target.vendor}, but the host CPU vendor is {vendor}"
    missing = sorted(target.features - flags)
    return f"{target.name} requires features not available on the host: {', '.join(missing)}"


def archspec_x86(
    vendor: str, flags: frozenset[str], hinted: str | None
) -> tuple[str | None, tuple[str, ...]]:
    """archspec's host target for these flags (its x86_64 rule), and why_not for the targets just above it.

    The notes matter in virtual machines: a hypervisor that hides one flag (``waitpkg``, say) makes archspec
    pick an older target than the silicon is; the note names the flag. Without a hypervisor only the target
    the family/model table names (``hinted``) gets a note, when archspec does not reach it.
    """
    try:
        from archspec.cpu import TARGETS
    except ImportError:  # a dependency, but a broken install should still get a report
        return None, ()
    if "ssse3" in flags:  # as archspec does: Linux lists SSE3 as "pni"; ssse3 implies it
        flags = flags | {"sse3"}
    root = TARGETS["x86_64"]
    fits = [
        t
        for t in TARGETS.values()
        if (t == root or root in t.ancestors) and t.vendor in (vendor, "generic") and t.features <= flags
    ]

    def rank(t):
        return len(t.ancestors), len(t.features)

    best_generic = max((t for t in fits if t.vendor == "generic"), key=rank, default=root)
    specific = [t for t in fits if t > best_generic]
    host = max(specific, key=rank) if specific else best_generic
    newer = [t for t in TARGETS.values() if host in t.parents and t.vendor == vendor]
    newer = newer if "hypervisor" in flags else []
    if hinted in TARGETS and hinted != host.name and not TARGETS[hinted] < host:
        newer = [TARGETS[hinted], *(t for t in newer if t.name != hinted)]
    return host.name, tuple(_why_not(t, vendor, flags) for t in newer)


def archspec_view(raw: RawCpu, machine: str, uarch: cpu_tables.Uarch | None, probes: Probes):
    """(target name, notes): from the flags on x86-64, else from archspec's own host detection."""
    hinted = uarch.archspec if uarch else None
    if raw.flags is not None and raw.vendor and machine.lower() in ("x86_64", "amd64"):
        return archspec_x86(raw.vendor, raw.flags, hinted)
    return probes.archspec(), ()


def collect_cpu(probes: Probes) -> CpuInfo:
    reader = READERS.get(probes.system)
    raw = reader(probes) if reader else RawCpu(missing={"model_name": f"no CPU probe for {probes.system}"})
    if raw.arm_implementer is not None and raw.arm_part is not None:
        uarch = cpu_tables.arm_uarch(raw.arm_implementer, raw.arm_part)
    else:
        uarch = cpu_tables.lookup(raw.vendor, raw.family, raw.model, raw.stepping)
    target, notes = archspec_view(raw, probes.machine, uarch, probes)
    missing = dict(raw.missing)
    if uarch is None:
        missing.setdefault("microarchitecture", "family/model not in devicelab's table")
    physical = probes.psutil.cpu_count(logical=False)
    logical = probes.psutil.cpu_count(logical=True)
    for name, value in (("physical_cores", physical), ("logical_threads", logical)):
        if value is None:
            missing[name] = "psutil could not count them"
    if raw.flags is None:
        missing.setdefault("isa", "no feature-flag list on this system")
    if raw.base_mhz is None:
        missing.setdefault("base_mhz", "not in sysfs or the brand string")
    return CpuInfo(
        model_name=raw.model_name,
        vendor=raw.vendor,
        machine=probes.machine,
        family=raw.family,
        model=raw.model,
        stepping=raw.stepping,
        microarchitecture=uarch.name if uarch else None,
        archspec_target=target,
        archspec_notes=notes,
        model_mismatch=cpu_tables.model_feature_mismatch(raw.vendor, uarch, raw.flags or frozenset()),
        hypervisor=("hypervisor" in raw.flags) if raw.flags is not None else None,
        physical_cores=physical,
        logical_threads=logical,
        base_mhz=raw.base_mhz,
        max_mhz=raw.max_mhz,
        caches=raw.caches,
        isa=isa_labels(raw.flags or frozenset()),
        flags=raw.flags or frozenset(),
        missing=missing,
    )
