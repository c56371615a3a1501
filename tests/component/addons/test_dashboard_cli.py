"""The installed ``kbox dashboard`` command against ``kbox start --runtime fake``: it enables the addon
when it is off, prints a one-time login link that works once, reuses the running dashboard the second
time, and fails in one line for a profile that is not running; ``kbox addons disable|enable dashboard``
remove and bring back its pod in kube-system, and the dashboard comes back on the same port."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.component.test_lifecycle import Env, one_line_error


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(home=tmp_path / "home", kbox_home=tmp_path / "kbox-home")
    e.home.mkdir()
    try:
        yield e
    finally:
        e.kbox("delete", "--all")


async def test_dashboard_enables_the_addon_and_prints_a_login_link(env: Env) -> None:
    missing = env.kbox("dashboard", "--url", "-p", "nowhere")
    assert missing.returncode == 1
    assert one_line_error(missing) == 'Error: profile "nowhere" is not running: kbox start --profile nowhere'

    env.ok("start", "-p", "ui", "--runtime", "fake", "--port", "0")
    assert re.search(r"^dashboard\s+disabled", env.ok("addons", "list", "-p", "ui"), re.M)
    first = env.kbox("dashboard", "-p", "ui", env={**env.env, "DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip() == "enabling the dashboard addon"
    found = re.search(r"(http://127\.0\.0\.1:\d+)(/login\?ticket=\S+)", first.stdout)
    assert found is not None and first.stdout.startswith("Open the dashboard at"), first.stdout
    assert re.search(r"^dashboard\s+enabled", env.ok("addons", "list", "-p", "ui"), re.M)

    second = env.ok("dashboard", "--url", "-p", "ui").strip()
    assert second.startswith(found.group(1) + "/login?ticket=") and second != found.group(0)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(second) as resp:
            assert resp.status == 200 and "kbox dashboard" in await resp.text()
        async with browser.get(found.group(1) + "/_/whoami") as resp:
            assert (await resp.json())["username"] == "kubernetes-admin"
        async with browser.get(second, allow_redirects=False) as resp:
            assert resp.headers["Location"] == "/login?error=expired"

    # The addon commands wait for its pod in kube-system, as for any addon.
    assert "addon dashboard is disabled" in env.ok("addons", "disable", "dashboard", "-p", "ui")
    assert not re.search(
        r"^kubernetes-dashboard-", env.ok("get", "pods", "-n", "kube-system", "-p", "ui"), re.M
    )
    assert "addon dashboard is enabled" in env.ok("addons", "enable", "dashboard", "-p", "ui")
    pods = env.ok("get", "pods", "-n", "kube-system", "-p", "ui")
    assert re.search(r"^kubernetes-dashboard-\S+\s+1/1\s+Running", pods, re.M), pods
    assert env.ok("dashboard", "--url", "-p", "ui").startswith(found.group(1) + "/login?ticket=")
