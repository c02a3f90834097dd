"""Headless Debian Chromium: print the audit report to PDF, screenshot it, dump its rendered DOM."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
A4_96DPI = (794, 1123)  # one A4 page in CSS pixels
A4_PRINT_AREA = (688, 1017)  # A4 less the audit report's 14 mm @page margins: what one PDF page holds
TIMEOUT_S = 60


def chromium() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    return next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)


def version() -> str:
    binary = chromium()
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=TIMEOUT_S)
    return out.stdout.strip() or "unknown"


def _run(html: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="akko-dr-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args, html.resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)


def print_pdf(html: Path, pdf: Path) -> Path:
    _run(html, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    return pdf


def screenshot(html: Path, png: Path, size: tuple[int, int] = A4_96DPI) -> Path:
    _run(html, f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", "--hide-scrollbars")
    return png


def dump_dom(html: Path, size: tuple[int, int] = A4_96DPI) -> str:
    return _run(html, f"--window-size={size[0]},{size[1]}", "--dump-dom").stdout
