from ml_workshop import hostfiles

WANTED = [
    {"path": "/etc/jupyterhub", "mode": "0755"},
    {"path": "/etc/jupyterhub/secrets", "mode": "0700"},
    {"path": "/srv/ml workshop", "mode": "0755", "owner": "hub", "group": "hub"},
]


def test_nothing_to_fix_on_a_converged_host():
    out = (
        "755 root root directory /etc/jupyterhub\n"
        "700 root root directory /etc/jupyterhub/secrets\n"
        "755 hub hub directory /srv/ml workshop\n"
    )
    assert hostfiles.dirs_to_fix(WANTED, out) == []


def test_missing_other_mode_owner_or_type_is_fixed():
    out = (
        "775 root root directory /etc/jupyterhub\n"  # mode
        "700 root staff directory /etc/jupyterhub/secrets\n"  # group
        "stat: cannot statx '/srv/ml workshop': No such file or directory\n"
    )
    assert [d["path"] for d in hostfiles.dirs_to_fix(WANTED, out)] == [w["path"] for w in WANTED]
    out = (
        "755 root root regular empty file /etc/jupyterhub\n700 root root directory /etc/jupyterhub/secrets\n"
    )
    assert [d["path"] for d in hostfiles.dirs_to_fix(WANTED[:2], out)] == ["/etc/jupyterhub"]


def test_parse_stat_ignores_noise():
    assert hostfiles.parse_stat("garbage\nxyz root root directory /a\n") == {}
    assert hostfiles.parse_stat("1777 root root directory /tmp\n") == {
        "/tmp": (0o1777, "root", "root", "directory")
    }


def test_stat_argv_matches_the_parser():
    argv = hostfiles.stat_argv(WANTED)
    assert argv[:4] == ["stat", "-c", hostfiles.STAT_FORMAT, "--"] and argv[4:] == [w["path"] for w in WANTED]


def test_unchanged_files_against_the_real_command(tmp_path):
    import grp
    import os
    import pwd
    import subprocess

    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    same, other, mode, gone = (tmp_path / n for n in ("same.json", "other name.py", "mode.service", "gone"))
    same.write_text('{"a": 1}\n')
    other.write_text("x = 1\n")
    mode.write_text("[Unit]\n")
    os.chmod(same, 0o644)
    os.chmod(other, 0o644)
    os.chmod(mode, 0o600)
    (tmp_path / "link").symlink_to(same)
    wanted = [
        {"dest": str(same), "content": '{"a": 1}\n', "mode": "0644", "owner": me, "group": group},
        {"dest": str(other), "content": "x = 2\n", "mode": "0644", "owner": me, "group": group},
        {"dest": str(mode), "content": "[Unit]\n", "mode": "0644", "owner": me, "group": group},
        {"dest": str(gone), "content": "", "mode": "0644", "owner": me, "group": group},
        {
            "dest": str(tmp_path / "link"),
            "content": '{"a": 1}\n',
            "mode": "0644",
            "owner": me,
            "group": group,
        },
        {"dest": str(same), "content": '{"a": 1}\n', "mode": "0644", "owner": "nobody-else", "group": group},
    ]
    out = subprocess.run(hostfiles.checksum_argv(wanted), capture_output=True, text=True, check=True).stdout
    assert hostfiles.unchanged_files(wanted, out) == [str(same)]
    assert hostfiles.unchanged_files(wanted, "") == []
    assert hostfiles.unchanged_files(wanted, "junk line\n") == []
