"""What the browser tests need beside Python: Debian's Chromium (Playwright drives it; its own
browser download cannot work offline) and axe-core from the npm registry, which the tests inject
into each page. Installed when missing, when this machine can install them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ops.errors import OpsError
from ops.paths import ROOT

CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.10"
NODE_FOLDER = ROOT / ".run" / "node"


def axe_script() -> Path:
    return NODE_FOLDER / "node_modules" / "axe-core" / "axe.min.js"


def ensure(say: Callable[[str], None]) -> None:
    """Chromium and axe-core in place, or an error that says how to get them."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise OpsError("the browser tests need Chromium at /usr/bin/chromium: "
                           "sudo apt-get install -y chromium")
        say("installing Chromium (apt-get install chromium) for the browser tests")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "fonts-dejavu-core"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    if not axe_script().exists():
        if shutil.which("npm") is None:
            raise OpsError("the browser tests need npm to fetch axe-core: "
                           "sudo apt-get install -y npm")
        say(f"installing axe-core {AXE_VERSION} (npm) for the accessibility checks")
        NODE_FOLDER.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                        str(NODE_FOLDER), f"axe-core@{AXE_VERSION}"], check=True)
