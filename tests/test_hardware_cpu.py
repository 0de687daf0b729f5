"""CPU probes on real-format text from Linux, macOS and Windows, checked against archspec and this machine."""

from __future__ import annotations

import dataclasses
import json
import os
import platform

import psutil
import pytest

from devicelab.hardware import collect, default_probes
from devicelab.hardware.cpu import archspec_x86, collect_cpu, parse_proc_cpuinfo, parse_size

# A Sapphire Rapids guest whose hypervisor hides waitpkg (flags as a cloud VM of this kind reports them).
SPR_VM_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht "
    "syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni "
    "pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c "
    "rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms "
    "invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb sha_ni avx512cd avx512bw avx512vl "
    "xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq "
    "avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm serialize tsxldtrk "
    "amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities"
)
SPR_VM = f"""processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
stepping\t: 8
cpu MHz\t\t: 2699.998
flags\t\t: {SPR_VM_FLAGS}

processor\t: 1
vendor_id\t: GenuineIntel
"""

EPYC_7763 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
stepping\t: 1
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht \
syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid aperfmperf \
rapl pni pclmulqdq monitor ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm \
cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core \
perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 invpcid_single hw_pstate ssbd mba ibrs ibpb stibp vmmcall \
fsgsbase bmi1 avx2 smep bmi2 invpcid cqm rdt_a rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 \
xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local clzero irperf xsaveerptr rdpru wbnoinvd amd_ppin arat npt \
lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold v_vmsave_vmload vgif \
v_spec_ctrl umip pku ospke vaes vpclmulqdq rdpid overflow_recov succor smca fsrm
"""

GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc \
dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm \
bf16 dgh rng
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1

processor\t: 1
"""

SYSFS_CACHES = {
    "/sys/devices/system/cpu/cpu0/cache/index0/level": "1\n",
    "/sys/devices/system/cpu/cpu0/cache/index0/type": "Data\n",
    "/sys/devices/system/cpu/cpu0/cache/index0/size": "32K\n",
    "/sys/devices/system/cpu/cpu0/cache/index1/level": "2\n",
    "/sys/devices/system/cpu/cpu0/cache/index1/type": "Unified\n",
    "/sys/devices/system/cpu/cpu0/cache/index1/size": "512K\n",
    "/sys/devices/system/cpu/cpu0/cache/index2/level": "3\n",
    "/sys/devices/system/cpu/cpu0/cache/index2/type": "Unified\n",
    "/sys/devices/system/cpu/cpu0/cache/index2/size": "32768K\n",
}


def probes_with(files: dict[str, str], *, system="Linux", machine="x86_64", run=None, archspec=None):
    return dataclasses.replace(
        default_probes(),
        read_file=files.get,
        run=run or (lambda args: None),
        system=system,
        machine=machine,
        archspec=archspec or (lambda: None),
    )


def test_vm_hiding_a_flag_is_explained_with_archspec_why_not():
    cpu = collect_cpu(probes_with({"/proc/cpuinfo": SPR_VM}))
    assert (cpu.vendor, cpu.family, cpu.model, cpu.stepping) == ("GenuineIntel", 6, 0x8F, 8)
    assert cpu.microarchitecture == "Sapphire Rapids"
    assert cpu.hypervisor is True
    assert cpu.archspec_target == "icelake"  # archspec alone would call it Ice Lake ...
    assert cpu.archspec_notes == ("sapphirerapids requires features not available on the host: waitpkg",)
    assert cpu.base_mhz == 2700  # from the brand string
    assert cpu.max_mhz is None and "cpufreq" in cpu.missing["max_mhz"]
    assert {"AVX-512 BF16", "AMX-BF16", "AMX-INT8", "AVX-512 FP16"} <= set(cpu.isa)


def test_vm_reporting_a_model_number_its_features_contradict():
    # The cloud VM this project runs on: model 0xA7 (Rocket Lake, a desktop chip without AMX) with AMX flags.
    cpu = collect_cpu(probes_with({"/proc/cpuinfo": SPR_VM.replace("model\t\t: 143", "model\t\t: 167")}))
    assert (cpu.model, cpu.microarchitecture) == (0xA7, "Rocket Lake")
    assert "says Rocket Lake, but the CPU has AMX" in cpu.model_mismatch
    assert collect_cpu(probes_with({"/proc/cpuinfo": SPR_VM})).model_mismatch is None


def test_bare_metal_amd_epyc():
    files = {
        "/proc/cpuinfo": EPYC_7763,
        "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3529052\n",
        **SYSFS_CACHES,
    }
    cpu = collect_cpu(probes_with(files))
    assert cpu.microarchitecture == "Zen 3"
    assert cpu.archspec_target == "zen3" and cpu.archspec_notes == ()
    assert cpu.hypervisor is False
    assert cpu.max_mhz == pytest.approx(3529.052)
    assert [(c.level, c.kind, c.size_bytes) for c in cpu.caches] == [
        (1, "data", 32 << 10),
        (2, "unified", 512 << 10),
        (3, "unified", 32 << 20),
    ]
    assert cpu.isa == ("FMA", "AVX2")


def test_arm_graviton3():
    cpu = collect_cpu(
        probes_with({"/proc/cpuinfo": GRAVITON3}, machine="aarch64", archspec=lambda: "neoverse_v1")
    )
    assert cpu.microarchitecture == "Neoverse V1"
    assert cpu.archspec_target == "neoverse_v1"
    assert {"NEON", "NEON FP16", "DOTPROD", "BF16", "I8MM", "SVE"} <= set(cpu.isa)
    assert "SVE2" not in cpu.isa


def test_windows_powershell_cim():
    cim = {
        "Name": "12th Gen Intel(R) Core(TM) i7-1255U",
        "Manufacturer": "GenuineIntel",
        "Caption": "Intel64 Family 6 Model 154 Stepping 4",
        "NumberOfCores": 10,
        "NumberOfLogicalProcessors": 12,
        "MaxClockSpeed": 1700,
        "L2CacheSize": 6656,
        "L3CacheSize": 12288,
    }
    calls = []

    def run(args):
        calls.append(args)
        return json.dumps(cim) if args[0] == "powershell" else None

    cpu = collect_cpu(
        probes_with({}, system="Windows", machine="AMD64", run=run, archspec=lambda: "alderlake")
    )
    assert "Get-CimInstance Win32_Processor" in calls[0][-1]  # CIM, not the removed wmic
    assert cpu.model_name == "12th Gen Intel(R) Core(TM) i7-1255U"
    assert cpu.microarchitecture == "Alder Lake"
    assert cpu.base_mhz == 1700
    assert [(c.level, c.size_bytes) for c in cpu.caches] == [(2, 6656 << 10), (3, 12 << 20)]
    assert "isa" in cpu.missing


@pytest.mark.parametrize("answer", [None, "", "Get-CimInstance : Access denied", "[]", '"text"'])
def test_windows_powershell_without_a_cim_object_still_gives_a_report(answer):
    probes = probes_with({}, system="Windows", machine="AMD64", run=lambda args: answer)
    cpu = collect_cpu(probes)
    assert cpu.model_name is None and "Win32_Processor" in cpu.missing["model_name"]


def test_macos_apple_silicon_sysctl():
    sysctl = "\n".join(
        [
            "machdep.cpu.brand_string: Apple M2",
            "hw.l1dcachesize: 65536",
            "hw.l1icachesize: 131072",
            "hw.l2cachesize: 4194304",
            "hw.optional.neon: 1",
            "hw.optional.arm.FEAT_FP16: 1",
            "hw.optional.arm.FEAT_DotProd: 1",
            "hw.optional.arm.FEAT_BF16: 1",
            "hw.optional.arm.FEAT_I8MM: 1",
            "hw.optional.arm.FEAT_SME: 0",
        ]
    )
    run = lambda args: sysctl if args[0] == "sysctl" else None  # noqa: E731
    cpu = collect_cpu(probes_with({}, system="Darwin", machine="arm64", run=run, archspec=lambda: "m2"))
    assert (cpu.model_name, cpu.vendor, cpu.archspec_target) == ("Apple M2", "Apple", "m2")
    assert cpu.isa == ("NEON", "NEON FP16", "DOTPROD", "BF16", "I8MM")
    assert [(c.level, c.kind) for c in cpu.caches] == [(1, "data"), (1, "instruction"), (2, "unified")]


def test_unreadable_cpuinfo_gives_reasons_not_errors():
    cpu = collect_cpu(probes_with({}))
    assert cpu.model_name is None and "/proc/cpuinfo" in cpu.missing["model_name"]
    assert cpu.microarchitecture is None and "microarchitecture" in cpu.missing


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64", reason="reference check for Linux x86-64"
)
def test_archspec_view_matches_archspec_on_this_machine():
    import archspec.cpu

    if not hasattr(archspec.cpu, "why_not"):
        pytest.skip("archspec before 0.2.7 has no why_not to compare with")
    info = parse_proc_cpuinfo(open("/proc/cpuinfo").read())
    target, notes = archspec_x86(info["vendor_id"], frozenset(info["flags"].split()), None)
    assert target == archspec.cpu.host().name
    for note in notes:
        assert note == archspec.cpu.why_not(note.split()[0])


def test_this_machine():
    report = collect()
    cpu = report.cpu
    assert cpu.logical_threads == psutil.cpu_count() == os.cpu_count()
    assert cpu.physical_cores == psutil.cpu_count(logical=False)
    assert cpu.machine == platform.machine()
    assert report.memory.total_bytes == psutil.virtual_memory().total


def test_parse_size():
    assert parse_size("48K") == 48 << 10
    assert parse_size("32768K") == 32 << 20
    assert parse_size("2 MB") == 2 << 20
    assert parse_size("nonsense") is None
