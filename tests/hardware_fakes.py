"""Fakes for hardware this machine lacks (GPUs, NVML), injected through ``devicelab.hardware.Probes``.

The fakes answer with the same attribute names and types as torch and nvidia-ml-py; their figures are those of
real cards (NVIDIA and AMD datasheets), so the tests can compare against published numbers.
"""

from __future__ import annotations

import dataclasses
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
    sm_clock_max=2520,
    mem_clock_max=10501,
    bus_width=384,
    power_mw=450_000,
    pcie=(1, 4, 16, 16),  # idle cards drop their link to gen 1
)
RTX_5090 = FakeCard(
    FakeProps("NVIDIA GeForce RTX 5090", 12, 0, 32 * GiB, 170, uuid="6c2f0b3e-8d1a-4a55-9f00-000000000003"),
    free=31 * GiB,
    sm_clock=200,
    sm_clock_max=2407,
    mem_clock_max=14001,
    bus_width=512,
    power_mw=575_000,
    pcie=(5, 5, 16, 16),
)
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
