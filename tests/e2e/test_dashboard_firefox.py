"""The dashboard in Firefox: Debian's firefox-esr, headless, driven over Marionette (Firefox's own remote
protocol, through Mozilla's marionette-driver package) against ``kbox start --runtime fake`` with the
dashboard addon, logged in through the link ``kbox dashboard --url`` prints.

Playwright cannot drive Debian's Firefox (it needs a patched build of its own), so this is the second
browser of issue 11 ("works in Chromium and Firefox") by another road. The fake runtime keeps it cheap:
what is under test is the page in Firefox; the Chromium test covers the Docker side (a real container's
logs, a shell).

The flow: the login form refusing a wrong token and taking the right one, then logging out; the one-time
link; the kube-system pods Running, narrowed by the name filter; a Deployment created in the YAML editor
of a second tab while the first keeps the Pods page open, its pod appearing there with no reload; the
pod's (synthetic) log streamed in; the Deployment's detail view with its YAML; scaled from the dialog;
its YAML edited (a bad value refused in the apiserver's words, a good one applied); delete cancelled,
then confirmed, its pods leaving the list; a phone-width window, where the navigation hides behind the
menu button and "/" jumps to the filter. No uncaught script error may be logged by the page. Screenshots
go next to the Chromium test's, in ``$KBOX_TEST_ARTIFACTS`` (default ``test-artifacts/``)/dashboard,
named ``firefox-*.png``.

Firefox comes from scripts/ensure-browser.sh firefox-esr when missing; without it (or without marionette-driver) the
test fails under CI=true and is skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.component.test_lifecycle import Env
from tests.support.wait import until

try:
    from marionette_driver.errors import (
        ElementNotInteractableException,
        NoSuchElementException,
        StaleElementException,
    )
    from marionette_driver.keys import Keys
    from marionette_driver.marionette import Marionette

    BACKSPACE = Keys.BACK_SPACE
except ImportError:  # reported by the fixture: a failure under CI=true, a skip elsewhere
    Marionette = None
    BACKSPACE = ""
    ElementNotInteractableException = NoSuchElementException = StaleElementException = Exception

FIREFOX = Path("/usr/bin/firefox-esr")
ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0

# A profile that starts quietly: Marionette on a port of Firefox's choosing (written to
# MarionetteActivePort in the profile), and none of the first-run pages, updates or telemetry.
PREFS = """\
user_pref("marionette.port", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("browser.tabs.warnOnClose", false);
"""

# Script errors Firefox logged for the page (uncaught exceptions, failed module loads), read from its
# console service in the browser's own (chrome) context, which sees the content processes' errors too.
PAGE_ERRORS = """
const base = arguments[0];
return Services.console.getMessageArray()
  .filter((m) => m instanceof Ci.nsIScriptError)
  .filter((m) => !(m.flags & (Ci.nsIScriptError.warningFlag | Ci.nsIScriptError.infoFlag)))
  .filter((m) => m.sourceName.startsWith(base) || m.category === "content javascript")
  .map((m) => `${m.sourceName}:${m.lineNumber}: ${m.errorMessage}`);
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    where = Path(os.environ.get("KBOX_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "dashboard"
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def marionette(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless firefox-esr with Marionette on a free port and a fresh profile, and a session in it;
    the browser (its whole process group) is stopped by its PID afterwards."""
    if not FIREFOX.exists():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure-browser.sh"), "firefox-esr"], check=False, timeout=600
        )
    if not FIREFOX.exists():
        _unavailable(f"{FIREFOX} is missing and scripts/ensure-browser.sh could not install it")
    if Marionette is None:
        _unavailable("the marionette-driver package is missing: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("firefox")
    profile = root / "profile"
    profile.mkdir()
    (profile / "user.js").write_text(PREFS)
    log = (root / "firefox.log").open("wb")
    env = {**os.environ, "HOME": str(root), "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}
    # -remote-allow-system-access: Marionette's chrome context, where the page's script errors are read.
    args = [
        "--headless",
        "--marionette",
        "-remote-allow-system-access",
        "--no-remote",
        "--profile",
        str(profile),
    ]
    browser = subprocess.Popen(
        [str(FIREFOX), *args, "about:blank"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its content processes share its process group, stopped with it
    )
    client = None
    try:
        port_file = profile / "MarionetteActivePort"

        def port() -> int | None:
            assert browser.poll() is None, f"firefox exited: {(root / 'firefox.log').read_text()[-2000:]}"
            text = port_file.read_text().strip() if port_file.exists() else ""
            return int(text) if text else None

        client = Marionette(host="127.0.0.1", port=until(port, WAIT), startup_timeout=WAIT)
        client.start_session()
        client.timeout.page_load = WAIT
        client.set_window_rect(width=1280, height=900)
        yield client
    finally:
        if client is not None and client.session is not None:
            try:
                client.delete_session()
            except Exception:  # the browser may already be gone; it is stopped below either way
                pass
        # SIGTERM first (Firefox ends its content processes itself), then SIGKILL for whatever of the
        # group is left, stragglers included.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(browser.pid, sig)
            except ProcessLookupError:
                break
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, str]]:
    root = tmp_path_factory.mktemp("dashboard-firefox")
    env = Env(home=root / "home", kbox_home=root / "kbox-home")
    env.home.mkdir()
    profile = f"fx-{uuid.uuid4().hex[:6]}"
    result = env.kbox(
        "start", "-p", profile, "--runtime", "fake", "--port", "0", "--addons", "dashboard", timeout=120
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    try:
        yield env, profile
    finally:
        env.kbox("delete", "--all", timeout=120)


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: registry.example/web:1
"""


class Page:
    """Small helpers over a Marionette session: CSS look-ups, waits, text and screenshots."""

    def __init__(self, client: Any, artifacts: Path) -> None:
        self.client = client
        self.artifacts = artifacts

    def all(self, selector: str) -> list[Any]:
        return list(self.client.find_elements("css selector", selector))

    def texts(self, selector: str) -> list[str]:
        """The rendered text of each element matching ``selector``, read in one go inside the page (the
        live lists redraw their rows, so element references can go stale between two calls)."""
        script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);"
        return [str(t) for t in self.client.execute_script(script, script_args=[selector])]

    def text(self, selector: str) -> str:
        return "\n".join(self.texts(selector))

    def wait_for(self, check: Callable[[], Any]) -> Any:
        """Poll ``check`` until it returns something truthy; an element redrawn under it counts as not yet."""

        def attempt() -> Any:
            try:
                return check()
            except (StaleElementException, NoSuchElementException, ElementNotInteractableException):
                return None

        return until(attempt, WAIT)

    def one(self, selector: str) -> Any:
        """The first element matching ``selector``, once there is one."""
        return self.wait_for(lambda: (self.all(selector) or [None])[0])

    def click(self, selector: str, text: str | None = None) -> None:
        """Click the first element matching ``selector`` (whose text is exactly ``text``, if given),
        looked up again when it was redrawn before the click landed."""

        def attempt() -> bool:
            for el in self.all(selector):
                if text is None or str(el.text).strip() == text:
                    el.click()
                    return True
            return False

        self.wait_for(attempt)

    def rows(self, containing: str = "") -> list[str]:
        return [r for r in self.texts("#resource-list tbody tr") if containing in r]

    def nav(self, label: str) -> None:
        """Follow a link of the Resources navigation by its exact text."""
        self.click("#sidebar a", label)

    def heading(self) -> str:
        return self.text("main h1")

    def shot(self, name: str) -> None:
        """A whole-page screenshot, taken from the top (the sticky header would otherwise be drawn where
        the page happens to be scrolled to)."""
        self.client.execute_script("window.scrollTo(0, 0);")
        (self.artifacts / f"firefox-{name}.png").write_bytes(self.client.screenshot(format="binary"))

    def press(self, key: str) -> None:
        """Type one key to whatever has the focus, as a user would (no element targeted)."""
        self.client.actions.sequence("key", "keyboard").key_down(key).key_up(key).perform()
        self.client.actions.release()


def test_the_issue_flow_in_firefox(started: tuple[Env, str], marionette: Any, artifacts: Path) -> None:
    env, profile = started
    link = env.ok("dashboard", "--url", "-p", profile).strip()
    assert "/login?ticket=" in link, link
    base = link.split("/login")[0]
    page = Page(marionette, artifacts)

    # Without a login the page asks for a token: a wrong one is refused with the reason; the cluster's
    # own, pasted as a user would, logs in (the form posts same-origin); Log out ends the session.
    marionette.navigate(f"{base}/")
    page.one("#token").send_keys("not-a-token")
    page.click("main form button[type='submit']")
    page.wait_for(lambda: "did not accept that token" in page.text("#login-error"))
    assert "kube-system" not in page.text("body")
    page.shot("00-login-refused")
    page.one("#token").send_keys((env.kbox_home / profile / "token").read_text().strip())
    page.click("main form button[type='submit']")
    page.wait_for(lambda: page.heading() == "Overview")
    page.click("form.logout button")
    page.wait_for(lambda: page.all("#token") and "/login" in marionette.get_url())
    marionette.navigate(f"{base}/#/r/core/v1/pods")
    page.wait_for(lambda: page.all("#token") and "/login" in marionette.get_url())

    # Logged in by the one-time link; the overview shows the node.
    marionette.navigate(link)
    page.wait_for(lambda: page.heading() == "Overview")
    page.wait_for(lambda: profile in page.text("article.card"))
    assert marionette.get_url().startswith(base) and "/login" not in marionette.get_url()
    page.shot("01-overview")

    # kube-system: every pod Running, the dashboard's own among them.
    page.click("#namespace option[value='kube-system']")
    page.nav("Pods")
    page.wait_for(lambda: page.rows("kubernetes-dashboard-") and page.rows("kube-apiserver-"))
    page.wait_for(lambda: len(page.rows("Running")) == len(page.rows()) >= 5)
    page.shot("02-kube-system-pods")

    # The name filter narrows the list as one types, and widens it again as one deletes.
    page.one("#name-filter").send_keys("sched")
    page.wait_for(lambda: len(page.rows()) == 1 and page.rows("kube-scheduler-"))
    page.one("#name-filter").send_keys(BACKSPACE * len("sched"))
    page.wait_for(lambda: len(page.rows()) >= 5)

    # The Pods page of namespace default stays open in this tab, marked so that a reload would show.
    page.click("#namespace option[value='default']")
    page.wait_for(lambda: page.heading().startswith("Pods") and not page.rows("kube-"))
    marionette.execute_script("document.documentElement.dataset.notReloaded = 'yes';")
    pods_tab = marionette.current_window_handle

    # A second tab: the Deployment written in the YAML editor.
    marionette.switch_to_window(marionette.open(type="tab", focus=True)["handle"])
    marionette.navigate(f"{base}/#/new")
    editor = page.one("#new-yaml")
    editor.clear()
    editor.send_keys(MANIFEST)
    page.click("#new-apply")
    page.wait_for(lambda: "deployment/web created" in page.text("main .alert.ok"))
    page.shot("03-created")
    marionette.close()

    # Back on the first tab: the pod appeared and turned Running, with no reload.
    marionette.switch_to_window(pods_tab)
    page.wait_for(lambda: len(page.rows("web-")) == 1 and "Running" in page.rows("web-")[0])
    assert marionette.execute_script("return document.documentElement.dataset.notReloaded;") == "yes"
    page.shot("04-pod-live")

    # The pod's page, and its container's log streamed into the page (a fetch read as it arrives).
    page.click("#resource-list tbody a")
    page.wait_for(lambda: page.heading().startswith("Pod web-"))
    page.click("main a", "Logs")
    page.wait_for(lambda: "fake container web started" in page.text("#logs"))
    page.shot("05-logs")

    # The Deployment's detail view, from its list: status and its YAML.
    page.nav("Deployments")
    page.wait_for(lambda: page.rows("web"))
    page.click("#resource-list tbody a", "web")
    page.wait_for(lambda: "1 ready of 1" in page.text("dl.kv"))
    yaml = page.wait_for(lambda: "kind: Deployment" in page.text("#yaml") and page.text("#yaml"))
    assert "name: web" in yaml and "image: registry.example/web:1" in yaml, yaml
    page.shot("06-detail")

    # Scaled to 2 in the dialog.
    page.click("#scale")
    replicas = page.one("dialog #replicas")
    replicas.clear()
    replicas.send_keys("2")
    page.click("dialog button[value='scale']")
    page.wait_for(lambda: "2 ready of 2" in page.text("dl.kv"))
    page.shot("07-scaled")

    # Its YAML edited in place: a bad value is refused in the apiserver's words, a good one applied.
    page.click("#edit")
    editor = page.one("#yaml-editor")
    page.wait_for(editor.is_displayed)
    original = str(marionette.execute_script("return document.getElementById('yaml-editor').value;"))
    assert "\n  replicas: 2\n" in original, original
    for replicas in ("-1", "1"):
        editor.clear()
        editor.send_keys(original.replace("\n  replicas: 2\n", f"\n  replicas: {replicas}\n", 1))
        page.click("#yaml-apply")
        if replicas == "-1":
            page.wait_for(lambda: "spec.replicas: Invalid value" in page.text("#yaml-section .alert.error"))
            page.shot("08-edit-refused")
    page.wait_for(lambda: "Applied." in page.text("#yaml-section .alert.ok"))
    page.wait_for(lambda: "1 ready of 1" in page.text("dl.kv") and "replicas: 1" in page.text("#yaml"))

    # Delete asks first: cancelled, nothing happens; confirmed, the list no longer has it.
    page.click("#delete")
    assert "This cannot be undone." in page.text("dialog")
    page.shot("09-delete-confirm")
    page.click("dialog button[value='']")
    page.wait_for(lambda: not page.all("dialog"))
    assert page.heading() == "Deployment web"
    page.click("#delete")
    page.click("dialog button[value='delete']")
    page.wait_for(lambda: page.heading().startswith("Deployments") and not page.rows("web"))
    page.nav("Pods")
    page.wait_for(lambda: page.heading().startswith("Pods") and not page.rows("web-"))
    page.shot("10-deleted")

    # Phone width: the navigation hides behind the menu button; "/" jumps to the filter.
    # Firefox keeps a window at least 500 px wide (it asks for 390); either is under the 760 px breakpoint.
    marionette.set_window_rect(width=390, height=800)
    page.wait_for(lambda: marionette.execute_script("return window.innerWidth <= 760;"))
    menu = page.one("#menu-toggle")
    page.wait_for(lambda: menu.is_displayed() and not page.one("#sidebar").is_displayed())
    menu.click()
    page.wait_for(lambda: page.one("#sidebar").is_displayed())
    assert menu.get_attribute("aria-expanded") == "true"
    page.shot("11-phone-menu")
    page.nav("Deployments")
    page.wait_for(
        lambda: page.heading().startswith("Deployments") and not page.one("#sidebar").is_displayed()
    )
    page.press("/")
    page.wait_for(lambda: marionette.execute_script("return document.activeElement.id;") == "name-filter")
    page.shot("12-phone-deployments")
    marionette.set_window_rect(width=1280, height=900)

    with marionette.using_context(marionette.CONTEXT_CHROME):
        errors = marionette.execute_script(PAGE_ERRORS, script_args=[base])
    assert errors == []
