"""Filters of the hub role. The logic lives in src/ml_workshop (alloc.py, unit-tested in
tests/test_alloc.py) and is the same code the spawner runs; this file only exposes it to Jinja."""

import sys

from ansible.errors import AnsibleFilterError


class _MissingPackage:
    """Stands in for an ml_workshop module that this Python cannot import: every filter that uses
    it fails with what to do, instead of Ansible skipping the plugin and reporting unknown filters."""

    def __init__(self, module: str, error: ImportError) -> None:
        self._message = (
            f"The {module} filters need the ml_workshop package, which {sys.executable} cannot import"
            f" ({error}): pip install the ml-workshop package (scripts/bootstrap.sh does it)."
        )

    def __getattr__(self, name: str) -> "_MissingPackage":
        return self

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise AnsibleFilterError(self._message)

    def __iter__(self):
        raise AnsibleFilterError(self._message)


try:
    from ml_workshop import (
        alloc,
        collect,
        content,
        firewall,
        hostfiles,
        hubconfig,
        i18n,
        names,
        profiles,
        tls,
    )
except ImportError as _error:  # the package is not installed where Ansible runs
    alloc = collect = content = firewall = hostfiles = hubconfig = i18n = names = profiles = tls = (
        _MissingPackage("hub_*", _error)
    )


class FilterModule:
    """hub_* filters."""

    def filters(self):
        return {
            "hub_npu_settings_problems": alloc.validate_npu_settings,
            "hub_roster_problems": hubconfig.roster_problems,
            "hub_ssh_port_problems": hubconfig.ssh_port_problems,
            "hub_cluster_problems": hubconfig.cluster_problems,
            "hub_ssh_bind_ip_problems": hubconfig.ssh_bind_ip_problems,
            "hub_username_problem": names.name_problem,
            "hub_cidr_problems": firewall.cidr_problems,
            "hub_bridge_name_problem": firewall.bridge_name_problem,
            "hub_tls_mode_problems": tls.mode_problems,
            "hub_tls_name_problems": tls.name_problems,
            "hub_tls_host_addresses": tls.host_addresses,
            "hub_tls_subject_alt_names": tls.subject_alt_names,
            "hub_dirs_to_fix": hostfiles.dirs_to_fix,
            "hub_stat_argv": hostfiles.stat_argv,
            "hub_checksum_argv": hostfiles.checksum_argv,
            "hub_content_download_problems": content.download_problems,
            "hub_content_subdir_problems": content.subdir_problems,
            "hub_content_dirs": content.content_dirs,
            "hub_collect_rows": collect.parse_listing,
            "hub_collect_summary": collect.summary_table,
            "hub_unchanged_files": hostfiles.unchanged_files,
            "hub_profile_problems": profiles.profile_problems,
            "hub_language_problem": i18n.language_problem,
        }
