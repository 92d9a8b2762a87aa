"""Peak memory of the current process.

VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec, so a child
started by a big benchmark process would report the parent's peak; VmHWM belongs to the child's own
address space."""


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return round(int(line.split()[1]) / 1024, 1)
