"""The `system` source: this machine's CPU, memory, disks, network and processes (psutil).

CPU percentages are computed from psutil.cpu_times() between two runs,
i.e. the busy share since the previous run (primed when the source is made).
Disk and network figures are exported as counters; rates are for the rules
and the console. Parts psutil cannot read here (no disk I/O counters in a
container, no load average, no swap) are left out rather than failing the run.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable

import psutil

from qbconsole.collect.base import check_timing, error_line
from qbconsole.model import Sample

log = logging.getLogger(__name__)

# Filesystems that hold no user data worth watching for space.
PSEUDO_FS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs",
    "overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "squashfs", "sysfs", "tmpfs",
    "tracefs", "udf",
})
SKIPPED_MOUNT_TREES = ("/snap", "/proc", "/sys", "/dev", "/run")
# What can go wrong reading an optional part in a container or a sandbox.
_UNAVAILABLE = (OSError, RuntimeError, NotImplementedError, AttributeError)


class SystemSource:
    """Samples of this machine. Options: ``mounts`` and ``nics`` restrict what
    is reported to the listed mount points / interfaces; ``include_loopback``
    also reports ``lo``."""

    kind = "system"

    def __init__(
        self,
        name: str = "system",
        interval: float = 5,
        timeout: float = 5,
        jitter: float = 0.1,
        *,
        mounts: Iterable[str] | None = None,
        nics: Iterable[str] | None = None,
        include_loopback: bool = False,
    ) -> None:
        check_timing(name, interval, timeout, jitter)
        self.name, self.interval, self.timeout, self.jitter = name, float(interval), float(timeout), float(jitter)
        self.mounts = _str_list("mounts", mounts)
        self.nics = _str_list("nics", nics)
        self.include_loopback = bool(include_loopback)
        self._warned: set[str] = set()
        # CPU use is the busy share of the CPU time elapsed since the previous
        # run. psutil's own cpu_percent(interval=None) keeps that state per
        # calling thread, and runs land on any worker thread, so keep it here.
        self._cpu_last = _cpu_times()

    def close(self) -> None:
        """Nothing to release: psutil keeps no handles."""

    def collect(self, now_ms: int) -> list[Sample]:
        out: list[Sample] = []

        def add(name: str, value: float, **labels: str) -> None:
            out.append(Sample(name, labels, now_ms, float(value)))

        now_times = _cpu_times()
        (total_then, cores_then), (total_now, cores_now) = self._cpu_last, now_times
        self._cpu_last = now_times
        add("system_cpu_percent", _busy_percent(total_then, total_now))
        for core, (then, now) in enumerate(zip(cores_then, cores_now)):
            add("system_cpu_core_percent", _busy_percent(then, now), core=str(core))
        mem = psutil.virtual_memory()
        add("system_memory_percent", mem.percent)
        add("system_memory_used_bytes", mem.total - mem.available)
        add("system_memory_total_bytes", mem.total)
        for part in (self._load, self._swap, self._disk_usage, self._disk_io, self._network):
            try:
                part(add)
            except _UNAVAILABLE as exc:
                self._warn_once(part.__name__, exc)
        add("system_processes", len(psutil.pids()))
        return out

    # ---- optional parts ---------------------------------------------------------
    def _load(self, add) -> None:
        for minutes, value in zip((1, 5, 15), psutil.getloadavg()):
            add(f"system_load{minutes}", value)

    def _swap(self, add) -> None:
        swap = psutil.swap_memory()
        add("system_swap_percent", swap.percent)
        add("system_swap_used_bytes", swap.used)

    def _disk_usage(self, add) -> None:
        for mount in self._watched_mounts():
            try:
                usage = psutil.disk_usage(mount)
            except OSError as exc:  # unmounted meanwhile, or no permission
                self._warn_once(f"disk:{mount}", exc)
                continue
            add("system_disk_percent", usage.percent, mount=mount)

    def _disk_io(self, add) -> None:
        io = psutil.disk_io_counters(perdisk=False)
        if io is None:  # no /proc/diskstats (containers)
            return
        add("system_disk_read_bytes_total", io.read_bytes)
        add("system_disk_written_bytes_total", io.write_bytes)

    def _network(self, add) -> None:
        stats = psutil.net_io_counters(pernic=True) or {}
        for nic, io in sorted(stats.items()):
            if self.nics is not None:
                if nic not in self.nics:
                    continue
            elif not self.include_loopback and _is_loopback(nic):
                continue
            add("system_network_received_bytes_total", io.bytes_recv, nic=nic)
            add("system_network_sent_bytes_total", io.bytes_sent, nic=nic)
            add("system_network_errors_total", io.errin, nic=nic, direction="in")
            add("system_network_errors_total", io.errout, nic=nic, direction="out")

    def _watched_mounts(self) -> list[str]:
        """Explicit ``mounts``, else real filesystems, one mount point per device."""
        if self.mounts is not None:
            return self.mounts
        by_device: dict[str, str] = {}
        for part in psutil.disk_partitions(all=False):
            if not is_real_mount(part.device, part.mountpoint, part.fstype):
                continue
            known = by_device.get(part.device)
            if known is None or len(part.mountpoint) < len(known):
                by_device[part.device] = part.mountpoint
        mounts = sorted(set(by_device.values()))
        return mounts or [os.path.abspath(os.sep)]  # e.g. an overlay root in a container

    def _warn_once(self, what: str, exc: BaseException) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.info("system source: %s unavailable here (%s); leaving it out", what.strip("_"), error_line(exc))


def is_real_mount(device: str, mountpoint: str, fstype: str) -> bool:
    """False for pseudo filesystems, snaps, loop devices and system mount trees."""
    if fstype in PSEUDO_FS or not fstype:
        return False
    if os.path.basename(device).startswith("loop"):
        return False
    return not any(mountpoint == tree or mountpoint.startswith(tree + "/") for tree in SKIPPED_MOUNT_TREES)


def _is_loopback(nic: str) -> bool:
    return nic == "lo" or nic.startswith("lo0") or nic.lower().startswith("loopback")


def _str_list(option: str, value: Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"system source option {option!r} must be a list of strings")
    return list(value)


def _cpu_times():
    """(all CPUs, per core) cumulative CPU times, from psutil."""
    return psutil.cpu_times(), psutil.cpu_times(percpu=True)


def _busy_idle(t) -> tuple[float, float]:
    """(busy, total) seconds as psutil counts them: guest time is already in user time."""
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return total - idle, total


def _busy_percent(then, now) -> float:
    """Busy share of the CPU time between two cpu_times() readings, 0–100."""
    busy0, total0 = _busy_idle(then)
    busy1, total1 = _busy_idle(now)
    if total1 <= total0:
        return 0.0
    return round(min(100.0, max(0.0, 100.0 * (busy1 - busy0) / (total1 - total0))), 1)
