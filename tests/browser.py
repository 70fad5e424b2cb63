"""Headless Chromium for the page tests: Debian's ``chromium`` and ``chromium-driver``.

Nothing downloads a browser: the binaries are the system's (``.ci/run`` installs
them), and Selenium is given both paths so that its driver manager never runs.
Missing binaries are a failure, not a skip.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("ASYNC_REPORTS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ASYNC_REPORTS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")

# As root in a closed network: no sandbox, no GPU, and none of Chromium's own
# connections (updates, sync, QUIC), which this machine refuses.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
)


@contextmanager
def chromium(download_dir: Path, width: int = 1280, height: int = 900) -> Iterator:
    """A Selenium driver of a fresh headless Chromium that saves downloads in ``download_dir``."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert os.access(binary, os.X_OK), (
            f"{binary} is missing: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does)"
        )
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(download_dir),
                "download.prompt_for_download": False,
                "intl.accept_languages": "en-US",
            },
        )
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            # Headless Chromium saves downloads only once told where.
            driver.execute_cdp_cmd(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(download_dir)},
            )
            yield driver
        finally:
            driver.quit()
