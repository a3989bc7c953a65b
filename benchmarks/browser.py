"""The artifact browser's own cost: time to the first listing of a 10,000-entry directory.

    uv run python benchmarks/browser.py [--entries 10000] [--repeat 5]

Starts ``mlartifacts server`` on local disk (127.0.0.1, one worker) over a directory
of ``--entries`` small files, and headless chromium (Debian's ``chromium`` and
``chromium-driver``, offline flags) driven by selenium. For each repeat the page is
loaded fresh at ``/#/browse/big`` and the browser's own clock gives the time from
navigation start to the first page of the listing on screen (the page sets the
``listing-rendered`` performance mark after drawing its table), then the same for the
last page (a deep link with its page token). Side by side, the reference: the same
listing requests made with ``requests`` (no page, no rendering), and the unpaged listing.
The server's resident memory is read from ``/proc`` before the page loads and as its
peak (VmHWM) after all of them.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

API = "/api/2.0/mlflow-artifacts/artifacts"
PAGE = 200  # the page's own page size


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def browser(profile: str):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1100,800", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))


def page_time(driver, url: str) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds from navigation start to the listing on screen, by the browser's clock."""
    driver.get("about:blank")
    driver.get(url)
    script = (
        "const m = performance.getEntriesByName('listing-rendered'); return m.length ? m[0].startTime : null"
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = driver.execute_script(script)
        if found is not None:
            return float(found)
        time.sleep(0.01)
    raise RuntimeError(f"no listing at {url}")


def api_time(url: str, params: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = requests.get(url, params=params, timeout=60)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000, len(response.content)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("SE_OFFLINE", "true")
    base = Path(tempfile.mkdtemp(prefix="mlartifacts-bench-browser-"))
    big = base / "artifacts" / "big"
    big.mkdir(parents=True)
    for i in range(args.entries):
        (big / f"file-{i:06d}.txt").write_bytes(b"x" * (i % 1000))
    port = free_port()
    cmd = [
        sys.executable, "-c", "from mlartifacts.cli import main; main()", "server",
        "--artifacts-destination", str(base / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    server = ServerProcess(cmd, base / "server.log").start()
    driver = None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(http_ok(f"{url}/health"), 30, proc=server, what="mlartifacts server")
        last_after = f"file-{(args.entries - 1) // PAGE * PAGE - 1:06d}.txt"
        token = base64.urlsafe_b64encode(last_after.encode()).decode()
        rss_before = memory_mib(server.pid, "VmRSS")
        driver = browser(str(base / "profile"))
        page_time(driver, f"{url}/#/browse/big")  # warm-up: the browser's own start
        first, last, ref_first, ref_last, ref_all = [], [], [], [], []
        size_all = 0
        for _ in range(args.repeat):
            first.append(page_time(driver, f"{url}/#/browse/big"))
            last.append(page_time(driver, f"{url}/#/browse/big?page={token}"))
            ref_first.append(
                api_time(url + API, {"path": "big", "max_results": str(PAGE), "details": "true"})[0]
            )
            params = {"path": "big", "max_results": str(PAGE), "details": "true", "page_token": token}
            ref_last.append(api_time(url + API, params)[0])
            elapsed, size_all = api_time(url + API, {"path": "big"})
            ref_all.append(elapsed)
        peak = memory_mib(server.pid, "VmHWM")
        rss_after = memory_mib(server.pid, "VmRSS")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

    def show(values: list[float]) -> str:
        return f"{statistics.median(values):7.1f} ms ({min(values):.1f}-{max(values):.1f})"

    print(f"directory of {args.entries} entries, page of {PAGE}, medians of {args.repeat} (min-max)")
    print(f"{'case':<44} {'page (browser clock)':<28} {'API alone (requests)':<28}")
    print(f"{'first page: navigation to table drawn':<44} {show(first):<28} {show(ref_first):<28}")
    print(f"{'last page (deep link with page token)':<44} {show(last):<28} {show(ref_last):<28}")
    print(f"{'whole listing, unpaged (reference)':<44} {'':<28} {show(ref_all)} {size_all / 1024:.0f} KiB")
    print(f"server memory: {rss_before:.0f} MiB RSS before, {rss_after:.0f} MiB after, peak {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
