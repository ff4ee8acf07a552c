"""`gptbench doctor`: what this machine can do and what would slow gptbench down, as a list of checks. Each check runs
on its own and can only add a line: one that fails says why, what it costs and how to fix it, and no check can end
the others.

    checks.py   the Check line, its statuses, and the guard around every probe
    system.py   versions, devices, kernels, compile, CPU, allocator, a training step; `diagnose` runs them all
    quiet.py    what a probe writes (torch's log lines, C++ on fd 2), kept for its check instead of the screen
    nvml.py     what NVML says of each CUDA device: energy counter, power limit, clock reasons, PCIe and NVLink
"""
