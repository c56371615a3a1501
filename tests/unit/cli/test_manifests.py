"""Reading manifests for ``kbox apply/create/delete -f`` (``kbox.cli.kube.manifests``): multi-document
files, ``kind: List``, empty documents, directories with and without ``-R``, stdin, and the one-line
errors for files that do not exist, YAML that does not parse (file and line) and objects without
``apiVersion``/``kind``. The commands themselves are covered in tests/component/cli/.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kbox.cli.kube import manifests
from kbox.cli.kube.manifests import CommandError

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def names(found: list[manifests.Manifest]) -> list[str]:
    return [m.name for m in found]


def test_documents_lists_and_empty_documents() -> None:
    text = (
        "---\n# only a comment\n---\n"
        + CM.format(name="a")
        + "---\n"
        + '{"apiVersion": "v1", "kind": "ConfigMapList", "items": ['
        + '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},'
        + '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret", '
        + '"metadata": {"name": "c", "namespace": "ns"}}]}]}\n'
        + "---\n"
    )
    found = manifests.parse(text, "app.yaml")
    assert names(found) == ["a", "b", "c"]
    assert [m.kind for m in found] == ["ConfigMap", "ConfigMap", "Secret"]
    assert found[2].namespace == "ns" and found[0].namespace is None
    assert all(m.source == "app.yaml" for m in found)


def test_timestamps_stay_strings() -> None:
    found = manifests.parse(
        CM.format(name="t") + "data:\n  day: 2024-01-01\n  at: 2024-01-01T10:00:00Z\n", "t.yaml"
    )
    assert found[0].obj["data"] == {"day": "2024-01-01", "at": "2024-01-01T10:00:00Z"}


def test_directories_recursive_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yaml").write_text(CM.format(name="b"))
    (tmp_path / "a.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}')
    (tmp_path / "README.md").write_text("# not a manifest: ignored")
    (tmp_path / "sub" / "c.yml").write_text(CM.format(name="c"))
    assert names(manifests.load([str(tmp_path)])) == ["a", "b"]
    assert names(manifests.load([str(tmp_path)], recursive=True)) == ["a", "b", "c"]
    found = manifests.load(["-", str(tmp_path / "b.yaml")], stdin=io.StringIO(CM.format(name="s")))
    assert [(m.name, m.source) for m in found] == [("s", "STDIN"), ("b", str(tmp_path / "b.yaml"))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: a: b\n",
            "f.yaml:5: mapping values",
        ),
        ("a: [1, 2\n", "f.yaml:2: "),
        ("- just\n- a list\n", "f.yaml (document 1): expected an object, found list"),
        (
            CM.format(name="ok") + "---\nkind: ConfigMap\nmetadata: {name: x}\n",
            'f.yaml (document 2): object "x" has no apiVersion',
        ),
        ("apiVersion: v1\nmetadata: {}\n", "f.yaml (document 1): object has no kind"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: [1]\n",
            "f.yaml (document 1): metadata must be an object",
        ),
    ],
)
def test_bad_manifests_name_file_and_place(text: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        manifests.parse(text, "f.yaml")
    assert caught.value.format_message().startswith(message)
    assert "\n" not in caught.value.format_message()


def test_missing_paths_and_nothing_to_do(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r'the path ".*nope\.yaml" does not exist'):
        manifests.load([str(tmp_path / "nope.yaml")])
    (tmp_path / "empty.yaml").write_text("---\n")
    with pytest.raises(CommandError, match="no objects passed to the command"):
        manifests.load([str(tmp_path / "empty.yaml")])
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CommandError, match="not a text file"):
        manifests.load([str(tmp_path / "binary.yaml")])
