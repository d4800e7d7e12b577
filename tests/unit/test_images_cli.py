"""`k8py images import|ls|rm` on a throwaway data dir."""

from __future__ import annotations

import json

from k8py.cli.images import human_size
from k8py.cli.main import main


def test_import_list_remove_a_rootfs_folder(tmp_path, capsys):
    folder = tmp_path / "rootfs"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin/hello").write_text("hi")
    data = str(tmp_path / "data")
    assert main(["images", "--data-dir", data, "import", str(folder)]) == 2       # a folder needs --name
    assert main(["images", "--data-dir", data, "import", str(folder), "--name", "tools/hello:v1"]) == 0
    capsys.readouterr()
    assert main(["images", "--data-dir", data, "ls"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    repo, tag, image_id, size = row.split()
    assert (repo, tag, len(image_id)) == ("docker.io/tools/hello", "v1", 13) and size.endswith("kB")
    assert main(["images", "--data-dir", data, "rm", "tools/hello:v1", "missing:1"]) == 1
    out = capsys.readouterr()
    assert "Deleted: tools/hello:v1" in out.out and 'no such image "missing:1"' in out.err
    assert main(["images", "--data-dir", data, "ls", "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_bad_archive_is_an_error_not_a_crash(tmp_path, capsys):
    junk = tmp_path / "x.tar"
    junk.write_text("nope")
    assert main(["images", "--data-dir", str(tmp_path / "d"), "import", str(junk)]) == 1
    assert "not a tar archive" in capsys.readouterr().err


def test_sizes_read_like_crictl():
    assert human_size(512) == "512B"
    assert human_size(1_987_000) == "1.987MB"
    assert human_size(4_200_000_000) == "4.2GB"


def test_an_image_in_use_by_a_container_is_not_removed(tmp_path, capsys):
    folder = tmp_path / "rootfs"
    folder.mkdir()
    (folder / "f").write_text("x")
    data = tmp_path / "data"
    assert main(["images", "--data-dir", str(data), "import", str(folder), "--name", "used:1"]) == 0
    image_id = capsys.readouterr().out.split()[-1]
    meta = data / "runc" / "containers" / "abc123" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"image_id": image_id}))
    assert main(["images", "--data-dir", str(data), "rm", "used:1"]) == 1
    assert "in use by container abc123" in capsys.readouterr().err
    meta.unlink()
    assert main(["images", "--data-dir", str(data), "rm", "used:1"]) == 0
