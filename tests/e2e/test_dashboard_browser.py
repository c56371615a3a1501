"""The dashboard in a real browser: Debian's chromium driven by Playwright against ``kbox start`` (docker
runtime), logged in through the link ``kbox dashboard --url`` prints (which also enables the addon).

The flow of issue 11: the kube-system pods Running; a Deployment created in the YAML editor; its pod
appearing on the open Pods page with no reload; scaled to 3 from its page, the new pods appearing live;
a pod's logs; a shell in it; a rollout restart; the Deployment deleted after confirmation and its pods leaving the list. Plus a phone-width
look (the menu opens from its button) and the keyboard shortcut to the filter. Screenshots of each step
go to ``$KBOX_TEST_ARTIFACTS`` (default ``test-artifacts/``)/dashboard.

Chromium comes from scripts/ensure-browser.sh chromium when missing; without it (or without Playwright) the
test fails under CI=true and is skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.component.test_lifecycle import Env
from tests.e2e.conftest import BuiltImages

pytestmark = pytest.mark.docker

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 20_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure-browser.sh"), "chromium"], check=False, timeout=600
        )
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing and scripts/ensure-browser.sh could not install it")
    return CHROMIUM


@pytest.fixture(scope="module")
def artifacts() -> Path:
    where = Path(os.environ.get("KBOX_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "dashboard"
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory, docker_images: BuiltImages
) -> Iterator[tuple[Env, str]]:
    root = tmp_path_factory.mktemp("dashboard")
    env = Env(home=root / "home", kbox_home=root / "kbox-home")
    env.home.mkdir()
    profile = f"dash-{uuid.uuid4().hex[:6]}"
    result = env.kbox("start", "-p", profile, "--runtime", "docker", "--port", "0", timeout=180)
    assert result.returncode == 0, (result.stdout, result.stderr)
    try:
        yield env, profile
    finally:
        env.kbox("delete", "--all", timeout=120)


def manifest(image: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {image}
        imagePullPolicy: Never
        command: [sh, -c, 'echo hello from the dashboard test; exec sleep 3600']
"""


def test_the_issue_flow_in_chromium(
    started: tuple[Env, str], docker_images: BuiltImages, chromium: Path, artifacts: Path
) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: pip install -e '.[test]'")
        raise
    env, profile = started
    link = env.ok("dashboard", "--url", "-p", profile).strip()
    assert "/login?ticket=" in link, link
    base = link.split("/login")[0]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            nav = page.get_by_role("navigation", name="Resources")
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))

            def shot(name: str) -> None:
                page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)

            # Logged in by the one-time link; the overview shows the node.
            page.goto(link)
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            expect(page.locator("article.card")).to_contain_text(profile)
            shot("01-overview")

            # kube-system: every pod Running, the dashboard's own among them.
            page.select_option("#namespace", "kube-system")
            nav.get_by_role("link", name="Pods", exact=True).click()
            rows = page.locator("#resource-list tbody tr")
            expect(rows.filter(has_text="kubernetes-dashboard-")).to_have_count(1)
            expect(rows.filter(has_text="kube-apiserver-")).to_have_count(1)
            expect(rows.filter(has_text="Running")).to_have_count(rows.count())
            assert rows.count() >= 6
            shot("02-kube-system-pods")

            # A Deployment written in the YAML editor.
            page.select_option("#namespace", "default")
            nav.get_by_role("link", name="Create from YAML").click()
            page.fill("#new-yaml", manifest(docker_images.busybox))
            page.click("#new-apply")
            created = page.get_by_role("link", name="deployment/web created")
            expect(created).to_be_visible()
            shot("03-created")

            # The Pods page, left open: the pod appears and turns Running without a reload.
            nav.get_by_role("link", name="Pods", exact=True).click()
            web_rows = page.locator("#resource-list tbody tr").filter(has_text="web-")
            expect(web_rows.filter(has_text="Running")).to_have_count(1)
            shot("04-pod-live")

            # Scale to 3 from the Deployment's page; its ReplicaSet and pods follow live.
            page.goto(f"{base}/#/r/apps/v1/deployments/default/web")
            page.click("#scale")
            page.fill("#replicas", "3")
            page.get_by_role("dialog").get_by_role("button", name="Scale").click()
            expect(page.locator("dl.kv")).to_contain_text("3 ready of 3")
            shot("05-scaled")
            nav.get_by_role("link", name="Pods", exact=True).click()
            expect(web_rows.filter(has_text="Running")).to_have_count(3)
            shot("06-three-pods")

            # A pod's logs.
            web_rows.first.get_by_role("link").click()
            page.get_by_role("link", name="Logs").first.click()
            expect(page.locator("#logs")).to_contain_text("hello from the dashboard test")
            shot("07-logs")

            # A shell in the pod's container, through the exec WebSocket.
            page.go_back()
            page.get_by_role("link", name="Shell").first.click()
            terminal = page.locator("#terminal")
            expect(terminal.locator(".xterm-rows")).to_contain_text("#")
            terminal.click()
            page.keyboard.type("echo answer-$((6*7))\n")
            expect(terminal.locator(".xterm-rows")).to_contain_text("answer-42")
            shot("08-shell")

            # Phone width: the navigation hides behind the menu button; "/" jumps to the filter.
            page.set_viewport_size({"width": 390, "height": 800})
            page.goto(f"{base}/#/r/core/v1/pods")
            expect(page.locator("#sidebar")).to_be_hidden()
            page.get_by_role("button", name="Menu").click()
            expect(page.locator("#sidebar")).to_be_visible()
            shot("09-phone-menu")
            nav.get_by_role("link", name="Deployments").click()
            # The new page's filter replaces the old one: press "/" once it is there.
            expect(page.get_by_role("heading", name="Deployments")).to_be_visible()
            page.keyboard.press("/")
            expect(page.locator("#name-filter")).to_be_focused()
            shot("10-phone-deployments")
            page.set_viewport_size({"width": 1280, "height": 900})

            # Restart the rollout (the template gets kubectl's restartedAt), then delete, confirmed;
            # the pods leave the open Pods page.
            page.goto(f"{base}/#/r/apps/v1/deployments/default/web")
            page.click("#restart")
            expect(page.locator("#yaml")).to_contain_text("kubectl.kubernetes.io/restartedAt")
            page.click("#delete")
            page.get_by_role("dialog").get_by_role("button", name="Delete").click()
            expect(page.get_by_role("heading", name="Deployments")).to_be_visible()
            expect(page.locator("#resource-list tbody tr").filter(has_text="web")).to_have_count(0)
            nav.get_by_role("link", name="Pods", exact=True).click()
            expect(web_rows).to_have_count(0)
            shot("11-deleted")
            assert problems == []
        finally:
            browser.close()
