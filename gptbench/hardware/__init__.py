"""What the machine is and can do, probed in one place.

    device.py       --device -> a torch.device; synchronising; CPU flags and fast bf16
    capability.py   what this torch and device can do (native bf16/TF32, compile, autocast, fused AdamW, MIG)
    nvml.py         NVML: one initialisation, the handle of a CUDA device, why there is none
    machine.py      the report's machine fingerprint
    allocator.py    the CPU memory allocator (tcmalloc/jemalloc preload)
    threads.py      CPU cores and the intra-op thread count
    specs.py        the GPU spec table (gpus.csv): dense peaks, memory, bandwidth, each with its source; torch-free
    peak.py         measured matmul TFLOP/s and copy bandwidth (`gptbench peak`)
"""
