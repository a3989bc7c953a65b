"""The artifact browser in a real headless browser: Debian's chromium, driven by selenium.

One server and one browser session for the whole module (the browser is the slow
part). chromium and chromium-driver come from core/ci/apt-packages; the browser is
started with the flags that keep it off the network (no component updates, sync,
or background requests), and selenium is pointed at both binaries so it never
looks for (or downloads) a driver of its own.

Set ``MLARTIFACTS_SCREENSHOTS=<dir>`` to save screenshots of the main views there
(docs/screenshots/ holds the ones the README shows).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import API, RunningServer, serve_app, start_cli_server

os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager, should it run at all, stays offline

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="chromium and chromium-driver are not installed"
)

HOSTILE = "<img src=x onerror=alert(1)>.txt"
LARGE = 450  # entries in the large directory: three pages of 200


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG with a gradient, made without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # Each row: a filter byte (0: none), then one RGB triple per pixel.
    rows = b"".join(
        b"\0" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("browser")
    root = tmp / "artifacts"
    run = root / "1" / "run1" / "artifacts"
    (run / "model").mkdir(parents=True)
    (run / "model" / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
    )
    (run / "model" / "requirements.txt").write_text("scikit-learn==1.5.0\n")
    (run / "plot.png").write_bytes(png(320, 200))
    (run / "notes.txt").write_text("the quick brown fox\njumps over the lazy dog\n")
    (run / "metrics.csv").write_text('step,loss\n1,0.9\n2,"0,5"\n3,0.25\n')
    (run / "report.html").write_text('<h1 id="pwned">rendered</h1><script>document.title="pwned"</script>')
    (run / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>')
    (run / HOSTILE).write_text("hostile name, harmless content")
    (run / "doomed.txt").write_text("delete me")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {"step": list(range(1000)), "loss": [1 / (i + 1) for i in range(1000)], "tag": ["<b>x</b>"] * 1000}
    )
    pq.write_table(table, run / "metrics.parquet", row_group_size=250)
    (root / "big").mkdir()
    for i in range(LARGE):
        (root / "big" / f"f{i:04d}.txt").write_text(str(i))
    proc = start_cli_server(tmp)
    try:
        yield RunningServer(f"http://127.0.0.1:{proc.port}", root, proc)  # type: ignore[attr-defined]
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--window-size=1100,800",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    # chromium writes crash reports and dconf settings under HOME whatever --user-data-dir says:
    # give it (through chromedriver, which it inherits from) a HOME inside the test's temp dir.
    home = tmp_path_factory.mktemp("chromium-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    browser = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER, env=env))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


def wait(driver: Any, condition: Any, timeout: float = 10) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def names(driver: Any) -> list[str]:
    # One script call: the page may redraw between separate element reads.
    script = "return [...document.querySelectorAll('#listing tbody td.name a')].map(a => a.textContent)"
    return list(driver.execute_script(script))


def open_page(driver: Any, site: RunningServer, fragment: str) -> None:
    """A fresh load of the page (a new fragment alone would keep the last test's state)."""
    driver.get("about:blank")
    driver.get(f"{site.url}/#{fragment}")


def listing_of(driver: Any, expected: str) -> list[str]:
    wait(driver, lambda d: expected in names(d))
    return names(driver)


def no_alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False


def screenshot(driver: Any, name: str) -> None:
    target = os.environ.get("MLARTIFACTS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / f"{name}.png"))


def test_the_listing_appears(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/browse/1/run1/artifacts")
    found = listing_of(driver, "notes.txt")
    assert found[0] == "model"  # directories first
    assert {"plot.png", "metrics.csv", "report.html", HOSTILE} <= set(found)
    row = driver.find_element("xpath", "//tr[td/a[text()='notes.txt']]")
    assert "44 B" in row.text and "UTC" in row.text  # size and modification time
    crumbs = [a.text for a in driver.find_elements("css selector", "#crumbs a")]
    assert crumbs == ["artifacts", "1", "run1", "artifacts"]
    # Where the server keeps the files is never on the page.
    assert str(site.destination) not in driver.page_source
    screenshot(driver, "listing")


def test_sorting_by_size(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/browse/1/run1/artifacts")
    listing_of(driver, "notes.txt")
    header = driver.find_element("xpath", "//th/button[starts-with(text(), 'Size')]")
    header.click()
    header = driver.find_element("xpath", "//th/button[starts-with(text(), 'Size')]")
    header.click()  # descending
    files = [n for n in names(driver) if n != "model"]
    sizes = [(site.destination / "1/run1/artifacts" / n).stat().st_size for n in files]  # type: ignore[operator]
    assert sizes == sorted(sizes, reverse=True)


def test_navigation_into_a_directory_and_back(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/browse/1/run1/artifacts")
    listing_of(driver, "model")
    driver.find_element("link text", "model").click()
    assert listing_of(driver, "MLmodel") == ["MLmodel", "requirements.txt"]
    assert driver.current_url.endswith("#/browse/1/run1/artifacts/model")
    driver.back()
    listing_of(driver, "notes.txt")
    assert driver.current_url.endswith("#/browse/1/run1/artifacts")
    driver.find_element("css selector", "#crumbs a[href='#/browse/1']").click()
    assert listing_of(driver, "run1") == ["run1"]


def test_keyboard_reaches_a_directory(driver: Any, site: RunningServer) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(driver, site, "/browse/1/run1")
    listing_of(driver, "artifacts")
    # Tab from the page's heading (focused after each navigation) to the first entry.
    body = driver.switch_to.active_element
    assert body.get_attribute("id") == "title"
    keyboard = ActionChains(driver)
    for _ in range(20):
        keyboard.send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element.text == "artifacts":
            break
    assert driver.switch_to.active_element.get_attribute("href").endswith("#/browse/1/run1/artifacts")
    keyboard.send_keys(Keys.ENTER).perform()
    listing_of(driver, "notes.txt")


def test_an_image_preview_renders(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/view/1/run1/artifacts/plot.png")
    image = wait(driver, lambda d: d.find_elements("id", "image-preview"))[0]
    wait(driver, lambda d: d.execute_script("return arguments[0].complete", image))
    assert driver.execute_script("return arguments[0].naturalWidth", image) == 320
    assert driver.find_element("id", "title").text == "plot.png"
    screenshot(driver, "image-preview")


def test_a_text_preview_shows_its_content(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/view/1/run1/artifacts/model/MLmodel")
    pre = wait(driver, lambda d: d.find_elements("id", "text-preview"))[0]
    assert "loader_module: mlflow.sklearn" in pre.text
    screenshot(driver, "text-preview")


def test_a_csv_preview_is_a_table(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/view/1/run1/artifacts/metrics.csv")
    table = wait(driver, lambda d: d.find_elements("id", "table-preview"))[0]
    cells = [
        [c.text for c in r.find_elements("css selector", "th, td")]
        for r in table.find_elements("css selector", "tr")
    ]
    assert cells == [["step", "loss"], ["1", "0.9"], ["2", "0,5"], ["3", "0.25"]]


def test_a_parquet_preview_shows_schema_and_first_rows(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/view/1/run1/artifacts/metrics.parquet")
    schema = wait(driver, lambda d: d.find_elements("id", "parquet-schema"))[0]
    rows = [
        [c.text for c in r.find_elements("css selector", "td")]
        for r in schema.find_elements("css selector", "tbody tr")
    ]
    assert rows == [["step", "int64"], ["loss", "double"], ["tag", "string"]]
    data = driver.find_element("id", "parquet-rows").find_elements("css selector", "tbody tr")
    assert len(data) == 100
    assert [c.text for c in data[1].find_elements("css selector", "td")] == ["1", "0.5", "<b>x</b>"]
    assert driver.find_elements("css selector", "#parquet-rows b") == []  # a value is text too
    assert "100 of 1000 rows." in driver.find_element("id", "content").text
    screenshot(driver, "parquet-preview")


def test_a_preview_of_what_is_not_parquet_is_refused(site: RunningServer) -> None:
    base = f"{site.url}/api/2.0/mlflow-artifacts/preview/1/run1/artifacts"
    not_parquet = requests.get(f"{base}/notes.txt", timeout=10)
    assert (not_parquet.status_code, not_parquet.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    (site.destination / "1/run1/fake.parquet").write_bytes(b"PAR1 not really")  # type: ignore[operator]
    fake = requests.get(f"{site.url}/api/2.0/mlflow-artifacts/preview/1/run1/fake.parquet", timeout=10)
    assert fake.status_code == 400 and "not a readable parquet file" in fake.json()["message"]
    assert str(site.destination) not in fake.text
    missing = requests.get(f"{base}/nope.parquet", timeout=10)
    assert missing.status_code == 404


def test_parquet_previews_need_pyarrow_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlartifacts.server import ServerConfig, create_app

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if pyarrow were not installed
    with serve_app(create_app(ServerConfig(artifacts_destination=str(tmp_path)))) as url:
        response = requests.get(f"{url}/api/2.0/mlflow-artifacts/preview/t.parquet", timeout=10)
    assert response.status_code == 501
    assert "pip install pyarrow" in response.json()["message"]


def test_a_name_with_markup_is_text(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/browse/1/run1/artifacts")
    listing_of(driver, HOSTILE)
    assert driver.find_elements("css selector", "#listing img") == []
    assert no_alert(driver)
    driver.find_element("link text", HOSTILE).click()
    pre = wait(driver, lambda d: d.find_elements("id", "text-preview"))[0]
    assert pre.text == "hostile name, harmless content"
    assert driver.find_element("id", "title").text == HOSTILE
    assert driver.find_elements("css selector", "main img, #crumbs img") == []
    assert no_alert(driver)


@pytest.mark.parametrize("name", ["report.html", "logo.svg"])
def test_active_content_is_shown_as_text(driver: Any, site: RunningServer, name: str) -> None:
    open_page(driver, site, f"/view/1/run1/artifacts/{name}")
    pre = wait(driver, lambda d: d.find_elements("id", "text-preview"))[0]
    assert pre.text.startswith("<")
    assert (
        driver.find_elements("id", "pwned") == [] and driver.find_elements("css selector", "main svg") == []
    )
    assert driver.title != "pwned" and no_alert(driver)
    # Fetched directly, it is a download that could not run anything even if rendered.
    response = requests.get(f"{site.artifacts}/1/run1/artifacts/{name}", timeout=10)
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_a_large_directory_pages(driver: Any, site: RunningServer) -> None:
    open_page(driver, site, "/browse/big")
    first = listing_of(driver, "f0000.txt")
    assert first == [f"f{i:04d}.txt" for i in range(200)]
    screenshot(driver, "large-directory")
    driver.find_element("id", "next-page").click()
    second = listing_of(driver, "f0200.txt")
    assert second == [f"f{i:04d}.txt" for i in range(200, 400)]
    driver.find_element("id", "next-page").click()
    assert listing_of(driver, "f0400.txt") == [f"f{i:04d}.txt" for i in range(400, LARGE)]
    assert driver.find_elements("id", "next-page") == []
    driver.back()
    assert listing_of(driver, "f0200.txt")[0] == "f0200.txt"


def test_delete_asks_first(driver: Any, site: RunningServer) -> None:
    doomed = site.destination / "1/run1/artifacts/doomed.txt"  # type: ignore[operator]
    open_page(driver, site, "/view/1/run1/artifacts/doomed.txt")
    wait(driver, lambda d: d.find_elements("id", "text-preview"))
    driver.find_element("css selector", "#actions button.danger").click()
    wait(driver, lambda d: not no_alert(d))
    driver.switch_to.alert.dismiss()
    assert doomed.exists()
    driver.find_element("css selector", "#actions button.danger").click()
    wait(driver, lambda d: not no_alert(d))
    driver.switch_to.alert.accept()
    listing_of(driver, "notes.txt")  # back in the directory
    assert not doomed.exists()
    assert "doomed.txt" not in names(driver)


def test_files_upload_into_the_directory(driver: Any, site: RunningServer, tmp_path: Path) -> None:
    local = tmp_path / "uploaded from page.txt"
    local.write_bytes(b"sent by the browser\n" * 100)
    open_page(driver, site, "/browse/1/run1")
    listing_of(driver, "artifacts")
    driver.find_element("id", "upload-input").send_keys(str(local))
    listing_of(driver, local.name)
    stored = site.destination / "1/run1" / local.name  # type: ignore[operator]
    assert stored.read_bytes() == local.read_bytes()
    assert "Uploaded 1 file." in driver.find_element("id", "status").text


def test_a_long_text_preview_is_cut(driver: Any, site: RunningServer) -> None:
    long = site.destination / "1/run1/long.log"  # type: ignore[operator]
    long.write_text("".join(f"line {i}\n" for i in range(60_000)))  # about 530 KiB
    open_page(driver, site, "/view/1/run1/long.log")
    pre = wait(driver, lambda d: d.find_elements("id", "text-preview"))[0]
    assert "Showing the first 256.0 KiB of" in driver.find_element("id", "content").text
    shown = driver.execute_script("return arguments[0].textContent.length", pre)
    assert shown == 256 * 1024


def test_a_narrow_window_keeps_name_size_and_actions(driver: Any, site: RunningServer) -> None:
    driver.set_window_size(420, 800)
    try:
        open_page(driver, site, "/browse/1/run1/artifacts")
        listing_of(driver, "notes.txt")
        headers = [th.text for th in driver.find_elements("css selector", "#listing th") if th.is_displayed()]
        assert [h.split(" ")[0] for h in headers] == ["Name", "Size", "Actions"]
        screenshot(driver, "narrow")
    finally:
        driver.set_window_size(1100, 800)


def test_page_policy_and_assets(site: RunningServer) -> None:
    page = requests.get(f"{site.url}/", timeout=10)
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it anyway
    script = requests.get(f"{site.url}/static/browser.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript") and "innerHTML" not in script.text
    assert requests.get(f"{site.url}/static/../_app.py", timeout=10).status_code == 404


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_directory_downloads_as_one_archive(site: RunningServer, kind: str) -> None:
    response = requests.get(
        f"{site.url}/api/2.0/mlflow-artifacts/archive/1/run1/artifacts/model",
        params={"format": kind},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="model.{kind}"'
    expected = {"MLmodel": (site.destination / "1/run1/artifacts/model/MLmodel").read_bytes()}  # type: ignore[operator]
    expected["requirements.txt"] = b"scikit-learn==1.5.0\n"
    if kind == "tar":
        with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
            got = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    else:
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert archive.testzip() is None
            got = {name: archive.read(name) for name in archive.namelist()}
    assert got == expected


def test_an_archive_of_nothing_is_a_404(site: RunningServer) -> None:
    response = requests.get(f"{site.url}/api/2.0/mlflow-artifacts/archive/no/such/dir", timeout=10)
    assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    bad = requests.get(
        f"{site.url}/api/2.0/mlflow-artifacts/archive/big", params={"format": "rar"}, timeout=10
    )
    assert bad.status_code == 400


def test_the_page_lives_under_the_static_prefix(tmp_path: Path) -> None:
    proc = start_cli_server(tmp_path, "--static-prefix", "/mlflow")
    url = f"http://127.0.0.1:{proc.port}"  # type: ignore[attr-defined]
    try:
        redirect = requests.get(f"{url}/mlflow", allow_redirects=False, timeout=10)
        assert (redirect.status_code, redirect.headers["location"]) == (308, "/mlflow/")
        assert "static/browser.js" in requests.get(f"{url}/mlflow/", timeout=10).text
        assert requests.get(f"{url}/mlflow/static/browser.css", timeout=10).status_code == 200
        assert requests.get(f"{url}/", timeout=10).status_code == 404
    finally:
        proc.stop()


def test_the_page_asks_for_credentials_when_auth_is_on(auth_server: RunningServer) -> None:
    anonymous = requests.get(f"{auth_server.url}/", timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(f"{auth_server.url}/", auth=("alice", "wonderland"), timeout=10).status_code == 200


def test_the_listing_details_are_opt_in(site: RunningServer) -> None:
    plain = requests.get(site.artifacts, params={"path": "1/run1/artifacts/model"}, timeout=10).json()
    assert set(plain["files"][0]) == {"path", "is_dir", "file_size"}  # as MLflow answers
    detailed = requests.get(
        site.artifacts, params={"path": "1/run1/artifacts/model", "details": "true"}, timeout=10
    ).json()
    assert isinstance(detailed["files"][0]["modified"], float)
    assert API in site.artifacts


def test_the_page_works_behind_authentication(driver: Any, auth_server: RunningServer) -> None:
    # Credentials in the URL stand in for the browser's Basic-auth prompt: either way the
    # browser keeps them for the origin and sends them with every call the page makes.
    (auth_server.destination / "shared").mkdir(parents=True)  # type: ignore[operator]
    (auth_server.destination / "shared" / "seen.txt").write_text("only for users")  # type: ignore[operator]
    host = auth_server.url.removeprefix("http://")
    driver.get("about:blank")
    driver.get(f"http://alice:wonderland@{host}/#/browse/shared")
    assert listing_of(driver, "seen.txt") == ["seen.txt"]
    driver.find_element("link text", "seen.txt").click()
    pre = wait(driver, lambda d: d.find_elements("id", "text-preview"))[0]
    assert pre.text == "only for users"


def test_digests_show_where_the_destination_keeps_them(driver: Any) -> None:
    # Every upload records the content's SHA-256 (issue 15); the listing shows it.
    import hashlib
    import uuid

    from mlartifacts.server import ServerConfig, create_app

    bucket = f"memory://browser-{uuid.uuid4().hex}"
    with serve_app(create_app(ServerConfig(artifacts_destination=bucket))) as url:
        assert requests.put(f"{url}{API}/run/weights.bin", data=b"w" * 100, timeout=10).ok
        listed = requests.get(f"{url}{API}", params={"path": "run", "details": "true"}, timeout=10).json()
        digest = "sha256:" + hashlib.sha256(b"w" * 100).hexdigest()
        assert listed["files"][0]["digest"] == digest
        driver.get("about:blank")
        driver.get(f"{url}/#/browse/run")
        assert listing_of(driver, "weights.bin") == ["weights.bin"]
        assert driver.find_element("css selector", "#listing td.digest").text == digest
