"""Device and precision: channels_last + bf16 autocast on CPUs with AVX512-BF16 (3-4x faster than fp32 here),
fp32 channels_last on other CPUs, automatic mixed precision on CUDA."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path

import torch


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None = full precision

    @staticmethod
    def pick(device: str | None = None, precision: str = "auto") -> Runtime:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision == "fp32":
            return Runtime(dev, None)
        if dev.type == "cuda":
            return Runtime(dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return Runtime(dev, torch.bfloat16 if cpu_has_bf16() else None)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.to(self.device, memory_format=torch.channels_last)

    def for_inference(self, module: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``module`` to run under :meth:`autocast` (the original stays as it is, to be saved): in eval
        mode, and under bf16 autocast on a CPU with the weights of its convolutions and linear layers already bf16.
        Autocast would cast each of them on every call, 0.7 ms of the 2.5 ms one LocUNet query takes here; the
        results are the same, since autocast runs those layers in bf16 anyway. Everything else (normalization
        layers, which autocast runs in fp32; buffers: coordinates, likelihood tables) stays fp32."""
        module = copy.deepcopy(self.prepare(module)).eval()
        if self.dtype == torch.bfloat16 and self.device.type == "cpu":
            for layer in module.modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                    for parameter in layer.parameters(recurse=False):
                        parameter.requires_grad_(False)
                        parameter.data = parameter.data.to(self.dtype)
        return module

    def describe(self) -> str:
        precision = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.dtype]
        return f"{self.device.type}, channels_last, {precision}, {torch.get_num_threads()} threads"
