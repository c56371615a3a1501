"""``kbox kubectl -- ARGS``: the real kubectl on the profile's kubeconfig, whatever ~/.kube/config says,
with kubectl's output and exit code; a clear line when the profile is not running or kubectl is missing."""

from __future__ import annotations

from pathlib import Path

from tests.component.cli.conftest import KboxCluster, one_line_error, require_kubectl


def test_runs_kubectl_against_the_profile(cluster: KboxCluster) -> None:
    require_kubectl()
    # A user kubeconfig pointing elsewhere must not matter.
    elsewhere = cluster.home / "elsewhere.yaml"
    elsewhere.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    result = cluster.kbox(
        "kubectl", "--", "get", "namespaces", "-o", "name", env={"KUBECONFIG": str(elsewhere)}
    )
    assert result.returncode == 0, result.stderr
    assert "namespace/default" in result.stdout.split()
    # Without "--" too; kubectl's own flags and exit codes pass through.
    missing = cluster.kbox("kubectl", "get", "pod", "nope", "-n", "default")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    assert cluster.kbox("kubectl", "--", "version", "--client").returncode == 0
    help_text = cluster.ok("kubectl", "--help")
    assert "Examples:" in help_text and "kbox kubectl -- get pods -A" in help_text


def test_not_running_profile_and_missing_kubectl_are_one_line(cluster: KboxCluster, tmp_path: Path) -> None:
    stopped = cluster.kbox("kubectl", "--profile", "absent", "--", "get", "pods")
    assert one_line_error(stopped) == 'Error: profile "absent" is not running: kbox start --profile absent'
    # No kubectl on PATH: /usr/bin/kubectl is the fallback (the error without it: tests/unit/cli).
    no_path = cluster.kbox("kubectl", "--", "version", "--client", env={"PATH": str(tmp_path)})
    if Path("/usr/bin/kubectl").exists():
        assert no_path.returncode == 0, no_path.stderr
    else:
        assert "kubectl is not installed" in one_line_error(no_path)
