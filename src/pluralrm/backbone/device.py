"""Where a backbone runs and in which precision, decided once per process.

Why measure instead of assuming: CPUs of the same kind differ wildly in bfloat16. On an AMD machine
with AVX2 only, bf16 matmuls ran 6× *slower* than fp32 (they are emulated); on an Intel Xeon with AMX-BF16
a 2,048² bf16 matmul ran at 2,640 GFLOP/s against 362 in fp32 on two threads. So ``dtype="auto"`` on a CPU
times one small matmul in each precision (a few tens of milliseconds, once per process) and picks bf16
only where it is clearly faster. On CUDA, bf16 is the default wherever the GPU supports it.

The chosen dtype changes every feature vector, so it is part of the feature namespace (cache key and the
reward model's compatibility check): bf16 and fp32 features never mix.
"""

from __future__ import annotations

import functools
import logging
import time

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16")
# bf16 must beat fp32 by this factor on the probe to be chosen: a marginal win is not worth the precision.
CPU_BF16_MIN_SPEEDUP = 1.5


def resolve_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` (``"cuda:N"`` is kept as given) from a user's choice."""
    import torch

    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for, but torch sees no CUDA GPU (torch {torch.__version__}); "
            "use --device cpu or auto"
        )
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """``"float32"`` or ``"bfloat16"`` for a resolved ``device``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    speedup = cpu_bf16_speedup()
    chosen = "bfloat16" if speedup >= CPU_BF16_MIN_SPEEDUP else "float32"
    logger.info("dtype auto on CPU: bf16 matmul %.2f× fp32 → %s", speedup, chosen)
    return chosen


@functools.cache
def cpu_bf16_speedup(size: int = 1024, repeats: int = 3) -> float:
    """fp32 time / bf16 time of a ``size``² matmul on this CPU (best of ``repeats``), measured once."""
    import torch

    def best_time(dtype) -> float:
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        torch.mm(a, b)  # warm-up: first calls pick kernels
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - start)
        return min(times)

    return best_time(torch.float32) / best_time(torch.bfloat16)


def torch_dtype(name: str):
    """The torch dtype of a resolved dtype name."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]
