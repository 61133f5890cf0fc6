import os
from pathlib import Path

import pytest

from hafm.trust import ownership_problem, untrusted_reason


def make_file(directory: Path, mode: int = 0o755) -> Path:
    path = directory / "script.sh"
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_a_private_file_in_private_directories_is_trusted(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    assert untrusted_reason(str(make_file(tmp_path))) is None


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777])
def test_a_group_or_world_writable_file_is_not(tmp_path: Path, mode: int) -> None:
    path = make_file(tmp_path, mode)
    assert untrusted_reason(str(path)) == f"{path} is writable by group/others (chmod go-w {path})"


def test_a_writable_directory_above_is_not_but_a_sticky_one_is(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = make_file(shared)
    shared.chmod(0o777)
    assert untrusted_reason(str(path)) == f"directory {shared} is writable by group/others (chmod go-w {shared})"
    shared.chmod(0o1777)  # like /tmp: others cannot rename or delete root's file
    assert untrusted_reason(str(path)) is None


def test_a_symlink_is_judged_by_its_target(tmp_path: Path) -> None:
    target = make_file(tmp_path, 0o777)
    link = tmp_path / "link.sh"
    link.symlink_to(target)
    assert untrusted_reason(str(link)) == f"{target} is writable by group/others (chmod go-w {target})"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to chown")
def test_a_file_owned_by_another_user_is_not(tmp_path: Path) -> None:
    path = make_file(tmp_path)
    os.chown(path, 65534, 65534)
    assert ownership_problem(str(path)) == (f"{path} is owned by nobody (uid 65534), not root (chown root {path})")
