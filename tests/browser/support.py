"""Constants shared by the browser tests and their fixtures."""

import os
import re
from pathlib import Path

CHROMIUM = os.environ.get("ECHO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parent.parent / "test-artifacts" / "screenshots"
DEMO_AGENT = "demo@echo.local"
INBOX = re.compile(r"/tickets/?$")
