"""Helpers for tests/test_browser.py: a JupyterLab server and a headless Chromium we own.

Both are started in their own process group, so that they (and their children) can be
stopped by process id, and both keep every file they write (settings, runtime files,
browser profile) inside one temporary folder. See /work/shared/recipes/browser-widget-test.md.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import List, Optional

CHROMIUM = "/usr/bin/chromium"
TOKEN = "stn-course-browser-test"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_lab_settings(settings_dir: Path) -> None:
    """User settings: no news pop-up, no update check, no notebook windowing (every cell
    stays in the DOM, so the test can find cells that are scrolled out of view)."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def get_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


class LabServer:
    """``jupyter lab`` on 127.0.0.1 serving ``root``, in its own process group."""

    def __init__(self, root: Path, workdir: Path, env: Optional[dict] = None):
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        settings = workdir / "lab-settings"
        _write_lab_settings(settings)
        self.env = dict(os.environ if env is None else env)
        self.env.update({
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "lab-workspaces"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "jupyter-runtime"),
            "STN_COURSE_QUICK": "1",
        })
        self.log_path = workdir / "jupyter-lab.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 60.0) -> None:
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--port-retries=0", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={self.root}", "--allow-root",
               "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                get_json(f"{self.base}/api/status?token={TOKEN}")
                return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?token={TOKEN}"

    def kernels(self) -> List[dict]:
        return get_json(f"{self.base}/api/kernels?token={TOKEN}")

    def wait_kernel_idle(self, timeout: float = 60.0) -> None:
        """Wait until one kernel runs and is idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                kernels = self.kernels()
            except OSError:
                kernels = []
            if kernels and all(k.get("execution_state") == "idle" for k in kernels):
                return
            time.sleep(0.25)
        raise TimeoutError(f"no idle kernel after {timeout:.0f} s: {kernels}")

    def shutdown_kernels(self) -> None:
        """Ask the server to stop every kernel (kernels run in their own sessions)."""
        try:
            for k in self.kernels():
                req = urllib.request.Request(f"{self.base}/api/kernels/{k['id']}?token={TOKEN}", method="DELETE")
                urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.shutdown_kernels()
        stop_process_group(self.proc, grace=10.0)
        self._log.close()


class Chromium:
    """Headless Chromium with a DevTools port, started by us so that we own its process id."""

    def __init__(self, workdir: Path, executable: str = CHROMIUM):
        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.executable = executable
        self.log_path = workdir / "chromium.log"
        self.proc: Optional[subprocess.Popen] = None
        self.cdp_url: Optional[str] = None

    def start(self, timeout: float = 30.0) -> str:
        cmd = [self.executable, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000",
               f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
               "--remote-debugging-port=0", "about:blank"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            if port_file.exists():
                first = port_file.read_text().splitlines()
                if first and first[0].strip().isdigit():
                    self.cdp_url = f"http://127.0.0.1:{first[0].strip()}"
                    return self.cdp_url
            time.sleep(0.1)
        raise RuntimeError(f"chromium wrote no DevToolsActivePort within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace=2.0)
            self._log.close()


def stop_process_group(proc: subprocess.Popen, grace: float) -> None:
    """Terminate ``proc``, give it (and its children) ``grace`` seconds, then kill its group.

    ``proc`` must have been started with ``start_new_session=True``, so its process group
    id is its pid and holds only it and its children.
    """
    pgid = proc.pid
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.1)
    if group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    """True while some process (not a zombie) of process group ``pgid`` exists."""
    return bool(processes_where(lambda pid, pg, cmd: pg == pgid))


def processes_where(predicate) -> List[int]:
    """Pids of live processes for which ``predicate(pid, pgid, cmdline)`` is true (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # fields after the ")" that ends the command name: state ppid pgrp ...
            state, _, pgrp = stat.rsplit(")", 1)[1].split()[:3]
            if state == "Z":
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if predicate(int(entry.name), int(pgrp), cmd):
            found.append(int(entry.name))
    return found


def processes_mentioning(text: str) -> List[str]:
    """Command lines of live processes whose command line contains ``text``."""
    me = os.getpid()
    pids = processes_where(lambda pid, pg, cmd: text in cmd and pid != me)
    out = []
    for pid in pids:
        try:
            out.append(f"{pid}: " + (Path(f"/proc/{pid}/cmdline").read_bytes()
                                     .replace(b"\0", b" ").decode(errors="replace")[:200]))
        except OSError:
            pass
    return out
