"""The trust rule (hafm/trust.py): every hop of a path, symlinks included, checked without resolving first."""

import os
from pathlib import Path

import pytest

from hafm.trust import MAX_SYMLINKS, directories_reason, secret_reason, tls_file_reason, untrusted_reason

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root to chown")


def make_file(directory: Path, mode: int = 0o755, name: str = "script.sh") -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def shared_dir(parent: Path, mode: int = 0o777) -> Path:
    """A directory another user could write (``mode`` 0777, or 01777 like /tmp)."""
    path = parent / "shared"
    path.mkdir()
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


def test_a_symlink_to_an_untrusted_file_names_the_file_and_the_link(tmp_path: Path) -> None:
    target = make_file(tmp_path, 0o777)
    link = tmp_path / "link.sh"
    link.symlink_to(target)
    assert untrusted_reason(str(link)) == (
        f"{target} is writable by group/others (chmod go-w {target}) (reached through symlink {link})"
    )


def test_the_directory_holding_a_symlink_is_checked_though_its_target_is_fine(tmp_path: Path) -> None:
    # The attack of issue 10: a user who can write the link's directory retargets it after start-up.
    target = make_file(tmp_path)
    shared = shared_dir(tmp_path)
    link = shared / "notify.sh"
    link.symlink_to(target)
    assert untrusted_reason(str(link)) == f"directory {shared} is writable by group/others (chmod go-w {shared})"


def test_a_symlinked_directory_is_followed_and_its_target_checked(tmp_path: Path) -> None:
    shared = shared_dir(tmp_path)
    make_file(shared)
    (tmp_path / "bin").symlink_to("shared")  # relative, like /bin -> usr/bin
    assert untrusted_reason(str(tmp_path / "bin" / "script.sh")) == (
        f"directory {shared} is writable by group/others (chmod go-w {shared}) "
        f"(reached through symlink {tmp_path / 'bin'})"
    )
    shared.chmod(0o755)
    assert untrusted_reason(str(tmp_path / "bin" / "script.sh")) is None


def test_dot_dot_after_a_symlink_goes_up_from_its_target_like_the_kernel(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b").chmod(0o755)
    make_file(tmp_path / "a")
    shared = shared_dir(tmp_path)
    make_file(shared)
    (shared / "up").symlink_to(tmp_path / "a" / "b")
    (tmp_path / "c").symlink_to(tmp_path / "a" / "b")
    # c/.. is a (physically), not tmp_path: a lexical resolver would look in the wrong place.
    assert untrusted_reason(str(tmp_path / "c" / ".." / "script.sh")) is None
    assert untrusted_reason(str(shared / "up" / ".." / "script.sh")) is not None  # the link's directory


def test_a_symlink_loop_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    assert untrusted_reason(str(tmp_path / "a")) == f"{tmp_path / 'a'}: more than {MAX_SYMLINKS} symlinks to follow"


def test_a_missing_file_or_dangling_symlink_is_a_reason_not_an_exception(tmp_path: Path) -> None:
    assert untrusted_reason(str(tmp_path / "gone.py")) == f"{tmp_path / 'gone.py'} does not exist"
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    assert untrusted_reason(str(tmp_path / "dangling.py")) == (
        f"{tmp_path / 'nowhere.py'} does not exist (reached through symlink {tmp_path / 'dangling.py'})"
    )
    assert untrusted_reason(str(make_file(tmp_path)) + "/sub") == f"{tmp_path / 'script.sh'} is not a directory"
    assert untrusted_reason(f"{tmp_path}/x\0y") == f"{str(tmp_path) + '/x' + chr(0) + 'y'!r} contains a NUL byte"


def test_directories_reason_allows_a_missing_program_only_in_trusted_directories(tmp_path: Path) -> None:
    assert directories_reason(str(tmp_path / "not-yet" / "chk.sh")) is None
    shared = shared_dir(tmp_path)
    assert directories_reason(str(shared / "chk.sh")) == (
        f"directory {shared} is writable by group/others (chmod go-w {shared})"
    )
    make_file(shared, 0o777, "chk.sh")
    shared.chmod(0o755)
    assert directories_reason(str(shared / "chk.sh")) is not None, "an existing file is still checked"


def test_a_relative_path_is_walked_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = shared_dir(tmp_path)
    make_file(shared)
    monkeypatch.chdir(tmp_path)
    assert (
        untrusted_reason("shared/script.sh") == f"directory {shared} is writable by group/others (chmod go-w {shared})"
    )


@needs_root
def test_a_file_owned_by_another_user_is_not(tmp_path: Path) -> None:
    path = make_file(tmp_path)
    os.chown(path, 65534, 65534)
    assert untrusted_reason(str(path)) == f"{path} is owned by nobody (uid 65534), not root (chown root {path})"


@needs_root
def test_a_symlink_another_user_owns_in_a_sticky_directory_is_not(tmp_path: Path) -> None:
    # In /tmp others cannot replace root's entries, but they can replace their own symlink.
    sticky = shared_dir(tmp_path, 0o1777)
    link = sticky / "notify.sh"
    link.symlink_to(make_file(tmp_path))
    os.chown(link, 65534, 65534, follow_symlinks=False)
    assert untrusted_reason(str(link)) == (
        f"symlink {link} is owned by nobody (uid 65534), not root (chown root {link})"
    )


@pytest.mark.parametrize(("mode", "refused"), [(0o600, False), (0o400, False), (0o640, True), (0o604, True)])
def test_a_secret_must_not_be_readable_by_others_either(tmp_path: Path, mode: int, refused: bool) -> None:
    key = make_file(tmp_path, mode, name="key.pem")
    expected = f"{key} is readable by group/others (chmod go-rwx {key})" if refused else None
    assert secret_reason(str(key)) == tls_file_reason("key", str(key)) == expected
    assert tls_file_reason("ca", str(key)) is None  # a CA or certificate is public


def test_a_secret_passes_the_trust_rule_first(tmp_path: Path) -> None:
    key = make_file(tmp_path, 0o660, name="key.pem")
    assert secret_reason(str(key)) == untrusted_reason(str(key))
