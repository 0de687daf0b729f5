"""Fakes for hardware this machine lacks (GPUs, NVML), injected through ``devicelab.hardware.Probes``.

The fakes answer with the same attribute names and types as torch and nvidia-ml-py; their figures are those of
real cards (NVIDIA and AMD datasheets), so the tests can compare against published numbers.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from types import SimpleNamespace

from devicelab.hardware.probes import Probes, default_probes

GiB = 1 << 30


@dataclass
class FakeProps:
    """torch.cuda.get_device_properties(i) of a real card."""

    name: str
    major: int
    minor: int
    total_memory: int
    multi_processor_count: int
    uuid: str = ""
    gcnArchName: str = ""  # torch spells it so


@dataclass
class FakeCard:
    """What NVML says about one card."""

    props: FakeProps
    free: int
    sm_clock: int
    sm_clock_max: int
    mem_clock_max: int
    bus_width: int
    power_mw: int
    pcie: tuple[int, int, int, int]  # current gen, max gen, current width, max width
    mig: bool = False  # a MIG slice: NVML knows its UUID as "MIG-...", not "GPU-..."


H100 = FakeCard(
    FakeProps("NVIDIA H100 80GB HBM3", 9, 0, 80 * GiB, 132, uuid="6c2f0b3e-8d1a-4a55-9f00-000000000001"),
    free=79 * GiB,
    sm_clock=345,
    sm_clock_max=1980,
    mem_clock_max=2619,
    bus_width=5120,
    power_mw=700_000,
    pcie=(5, 5, 16, 16),
)
RTX_4090 = FakeCard(
    FakeProps("NVIDIA GeForce RTX 4090", 8, 9, 24 * GiB, 128, uuid="6c2f0b3e-8d1a-4a55-9f00-000000000002"),
    free=23 * GiB,
    sm_clock=210,
    sm_clock_max=3105,  # NVML's maximum, above the 2520 MHz boost clock NVIDIA's figures use
    mem_clock_max=10501,
    bus_width=384,
    power_mw=450_000,
    pcie=(1, 4, 16, 16),  # idle cards drop their link to gen 1
)
RTX_5090 = FakeCard(
    FakeProps("NVIDIA GeForce RTX 5090", 12, 0, 32 * GiB, 170, uuid="6c2f0b3e-8d1a-4a55-9f00-000000000003"),
    free=31 * GiB,
    sm_clock=200,
    sm_clock_max=3090,  # NVML's maximum, above the 2407 MHz boost clock NVIDIA's figures use
    mem_clock_max=14001,
    bus_width=512,
    power_mw=575_000,
    pcie=(5, 5, 16, 16),
)


def _card(
    name: str, cc: tuple[int, int], gib: int, sms: int, sm_max: int, mem_max: int, bus: int, watts: int
) -> FakeCard:
    uuid = f"6c2f0b3e-8d1a-4a55-9f00-{zlib.crc32(name.encode()):012d}"
    props = FakeProps(name, *cc, gib * GiB, sms, uuid=uuid)
    return FakeCard(props, (gib - 1) * GiB, 210, sm_max, mem_max, bus, watts * 1000, (4, 4, 16, 16))


@dataclass(frozen=True)
class RealCard:
    """A real card: what torch and NVML report for it, and NVIDIA's published dense TFLOP/s (the reference).

    The published figures are dense (NVIDIA's sparsity figures halved), tensor rows with fp32 accumulation,
    fp32 without tensor cores, copied from the datasheets and whitepapers named in ``source``. The NVML
    maximum SM clocks are those nvidia-smi -q -d CLOCK shows on such cards ("Max Clocks: SM"): H200's 1980 MHz
    is from a published nvidia-smi log (awslabs/amazon-eks-ami PR 1985), H100 SXM 1980 and A100 1410 are the
    usual values; the GeForce, H100 PCIe/NVL and B200 ones are not yet confirmed on a card (a known product's
    peak does not depend on them; the clock formula's would).
    """

    label: str
    card: FakeCard
    published: dict[str, float]
    source: str


_A100_FIGURES = {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}
_H100_SXM_FIGURES = {"fp32": 67, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5, "fp8": 1979}
REAL_CARDS = [
    RealCard(
        "RTX 3090",
        _card("NVIDIA GeForce RTX 3090", (8, 6), 24, 82, 2100, 9751, 384, 350),
        {"fp32": 35.6, "tf32": 35.6, "bf16": 71, "fp16": 71},
        "GA102 whitepaper v2.0, Appendix A (boost 1695 MHz)",
    ),
    RealCard(
        "RTX 4090",
        RTX_4090,
        {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2, "fp8": 330.3},
        "Ada whitepaper, Appendix A (boost 2520 MHz)",
    ),
    RealCard(
        "RTX 5090",
        RTX_5090,
        {"fp32": 104.8, "tf32": 104.8, "bf16": 209.5, "fp16": 209.5, "fp8": 419},
        "RTX Blackwell whitepaper, Appendix A (boost 2407 MHz)",
    ),
    RealCard(
        "A100 SXM4 40GB",
        _card("NVIDIA A100-SXM4-40GB", (8, 0), 40, 108, 1410, 1215, 5120, 400),
        _A100_FIGURES,
        "A100 datasheet",
    ),
    RealCard(
        "A100 SXM4 80GB",
        _card("NVIDIA A100-SXM4-80GB", (8, 0), 80, 108, 1410, 1593, 5120, 400),
        _A100_FIGURES,
        "A100 datasheet",
    ),
    RealCard(
        "A100 PCIe 40GB",
        _card("NVIDIA A100-PCIE-40GB", (8, 0), 40, 108, 1410, 1215, 5120, 250),
        _A100_FIGURES,
        "A100 datasheet",
    ),
    RealCard(
        "A100 PCIe 80GB",
        _card("NVIDIA A100 80GB PCIe", (8, 0), 80, 108, 1410, 1512, 5120, 300),
        _A100_FIGURES,
        "A100 datasheet",
    ),
    RealCard(
        "L40S",
        _card("NVIDIA L40S", (8, 9), 48, 142, 2520, 9001, 384, 350),
        {"fp32": 91.6, "tf32": 183, "bf16": 362.05, "fp16": 362.05, "fp8": 733},
        "L40S datasheet",
    ),
    RealCard("H100 SXM", H100, _H100_SXM_FIGURES, "H100 datasheet, SXM"),
    RealCard(
        "H100 PCIe",
        _card("NVIDIA H100 PCIe", (9, 0), 80, 114, 1755, 1593, 5120, 350),
        {"fp32": 51, "tf32": 378, "bf16": 756.5, "fp16": 756.5, "fp8": 1513},
        "H100 datasheet, PCIe",
    ),
    RealCard(
        "H100 NVL",
        _card("NVIDIA H100 NVL", (9, 0), 94, 132, 1785, 2619, 6144, 400),
        {"fp32": 60, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5, "fp8": 1670.5},
        "H100 datasheet, NVL",
    ),
    RealCard(
        "H200 SXM",
        _card("NVIDIA H200", (9, 0), 141, 132, 1980, 3201, 6144, 700),
        _H100_SXM_FIGURES,
        "H200 datasheet, SXM",
    ),
    RealCard(
        "B200",
        _card("NVIDIA B200", (10, 0), 180, 148, 1965, 3996, 8192, 1000),
        {"fp32": 75, "tf32": 1100, "bf16": 2250, "fp16": 2250, "fp8": 4500},
        "HGX B200 datasheet, per GPU",
    ),
]

MI300X = FakeProps("AMD Instinct MI300X", 9, 4, 192 * GiB, 304, gcnArchName="gfx942:sramecc+:xnack-")


class NVMLError(Exception):
    pass


class FakeNvml:
    """nvidia-ml-py's module-level functions over FakeCards. ``fail`` makes every per-device call raise."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVMLError = NVMLError

    def __init__(self, cards: list[FakeCard], *, driver="580.159.04", cuda=13000, fail=False):
        self.cards = cards
        self.driver, self.cuda, self.fail = driver, cuda, fail

    def _card(self, handle) -> FakeCard:
        if self.fail:
            raise NVMLError("Not Supported")
        return self.cards[handle]

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetCount(self):
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid):
        for i, card in enumerate(self.cards):
            if f"{'MIG' if card.mig else 'GPU'}-{card.props.uuid}" == uuid:
                return i
        raise NVMLError("Not Found")

    def nvmlDeviceGetName(self, handle):
        return self.cards[handle].props.name

    def nvmlDeviceGetMemoryInfo(self, handle):
        card = self._card(handle)
        return SimpleNamespace(
            total=card.props.total_memory, free=card.free, used=card.props.total_memory - card.free
        )

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return self._card(handle).sm_clock

    def nvmlDeviceGetMaxClockInfo(self, handle, clock):
        card = self._card(handle)
        return card.sm_clock_max if clock == self.NVML_CLOCK_SM else card.mem_clock_max

    def nvmlDeviceGetMemoryBusWidth(self, handle):
        return self._card(handle).bus_width

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return self._card(handle).power_mw

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        return self._card(handle).pcie[0]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._card(handle).pcie[1]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        return self._card(handle).pcie[2]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._card(handle).pcie[3]


@dataclass
class TorchBuild:
    """A torch build and what it finds: CUDA/ROCm/MPS flags, arch list, devices."""

    version: str = "2.11.0+cu130"
    cuda: str | None = "13.0"
    hip: str | None = None
    devices: list[FakeProps] = field(default_factory=list)
    arch_list: tuple[str, ...] = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")
    mps_built: bool = False
    mps_available: bool = False
    xpu_built: bool = False  # an Intel XPU build (torch._C._has_xpu); no XPU device is ever found
    free: int = 60 * GiB  # torch.cuda.mem_get_info's answer (used only without NVML)


def fake_torch(build: TorchBuild) -> SimpleNamespace:
    devices = build.devices
    cuda = SimpleNamespace(
        is_available=lambda: bool(devices),
        device_count=lambda: len(devices),
        get_device_properties=lambda i: devices[i],
        get_arch_list=lambda: list(build.arch_list) if (build.cuda or build.hip) else [],
        mem_get_info=lambda i: (build.free, devices[i].total_memory),
    )
    backends = SimpleNamespace(
        mps=SimpleNamespace(is_built=lambda: build.mps_built, is_available=lambda: build.mps_available),
        cudnn=SimpleNamespace(
            is_available=lambda: bool(build.cuda), version=lambda: 91002 if build.cuda else None
        ),
        mkldnn=SimpleNamespace(is_available=lambda: True),
        cpu=SimpleNamespace(get_cpu_capability=lambda: "AVX512"),
    )
    return SimpleNamespace(
        __version__=build.version,
        version=SimpleNamespace(cuda=build.cuda, hip=build.hip),
        cuda=cuda,
        backends=backends,
        mps=SimpleNamespace(recommended_max_memory=lambda: 21 * GiB),
        xpu=SimpleNamespace(is_available=lambda: False, device_count=lambda: 0),
        _C=SimpleNamespace(_has_xpu=build.xpu_built),
        get_num_threads=lambda: 2,
        get_num_interop_threads=lambda: 2,
    )


def no_nvml():
    raise ImportError("No module named 'pynvml'")


def probes_for(build: TorchBuild, nvml=None, *, system="Linux", nvidia_hint=None, environ=None) -> Probes:
    """The real machine's CPU, memory and files, with a fake torch build and a fake NVML."""
    nvml_factory = (lambda: nvml) if nvml is not None else no_nvml
    hint = nvidia_hint if nvidia_hint is not None else nvml is not None
    return dataclasses.replace(
        default_probes(),
        torch=fake_torch(build),
        nvml=nvml_factory,
        nvidia_hint=lambda: hint,
        system=system,
        environ=environ if environ is not None else {},
    )
