# ml-workshop: what an SSH session in a student's container starts with (sourced first thing in
# root's and the student's ~/.bashrc, which bash reads for interactive shells and for commands
# sshd runs: `ssh host cmd`, VS Code Remote-SSH's server; login shells reach it through ~/.profile).
# - the environment JupyterLab's terminal has: mlw-user-start writes it at every container start
#   (PATH with the notebook Python first, cache settings, Ascend variables, the SSH address)
# - an SSH session that would start in the home directory starts in the work directory instead
# shellcheck shell=sh
if [ -r /etc/profile.d/ml-workshop-env.sh ]; then
  # shellcheck disable=SC1091
  . /etc/profile.d/ml-workshop-env.sh
fi
if [ -n "${SSH_CONNECTION:-}" ] && [ "${PWD:-}" = "${HOME:-}" ] && [ -n "${MLW_WORK_DIR:-}" ] \
   && [ -d "$MLW_WORK_DIR" ] && [ -z "${MLW_SSH_SESSION_CD_DONE:-}" ]; then
  MLW_SSH_SESSION_CD_DONE=1
  export MLW_SSH_SESSION_CD_DONE
  cd "$MLW_WORK_DIR" || true
fi
