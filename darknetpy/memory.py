"""How much memory the machine can give (to refuse a network or image that cannot fit)."""


def available_memory() -> int:
    """MemAvailable from /proc/meminfo, or a generous default where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 16 * 2**30
