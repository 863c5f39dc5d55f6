# Copyright (c) samref contributors. All rights reserved.
import torch


def has_fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions in hardware.

    CPUs: AMX (Intel Sapphire Rapids and later) or AVX512-BF16 (Intel
    Cooper Lake, AMD Zen 4 and later), as detected by torch, with torch's
    own kernels dispatched to AVX-512 (``ATEN_CPU_CAPABILITY=avx2`` caps
    them, and bfloat16 then costs conversions in the norms and
    activations); CUDA: what ``torch.cuda.is_bf16_supported`` says (Ampere
    and later). Any other device, and a torch without these probes, counts
    as no.

    Args:
        device (torch.device): Where the model runs.

    Returns:
        bool: True when bfloat16 units are there.
    """
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    if device.type != 'cpu':
        return False
    capability = getattr(torch.backends.cpu, 'get_cpu_capability', None)
    if capability is None or capability() != 'AVX512':
        return False
    probes = ('_is_amx_tile_supported', '_is_avx512_bf16_supported')
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
