"""Process resource sampling: peak RSS per step window and for the whole run, CPU time."""

from __future__ import annotations

import threading
import time

import psutil

MB = 1024 * 1024


class Window:
    def __init__(self, rss: int) -> None:
        self.start_rss = rss
        self.peak = rss


class ResourceMonitor:
    """Samples this process's RSS every `interval` seconds while open windows exist."""

    def __init__(self, interval: float = 0.05) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.run_peak = self.proc.memory_info().rss
        self.cpu_start = self._cpu()
        self._windows: set[Window] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="headwater-monitor", daemon=True)
        self._thread.start()

    def _cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def _tick(self) -> int:
        rss = self.proc.memory_info().rss
        with self._lock:
            self.run_peak = max(self.run_peak, rss)
            for w in self._windows:
                w.peak = max(w.peak, rss)
        return rss

    def open(self) -> Window:
        window = Window(self._tick())
        with self._lock:
            self._windows.add(window)
        return window

    def close(self, window: Window) -> tuple[float, float]:
        """(peak MB, delta MB) over the window."""
        rss = self._tick()
        with self._lock:
            self._windows.discard(window)
        return window.peak / MB, (rss - window.start_rss) / MB

    def cpu_seconds(self) -> float:
        return self._cpu() - self.cpu_start

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self._tick()

    @staticmethod
    def now() -> float:
        return time.monotonic()
