#!/bin/sh
# Test image entrypoint: sshd as root (privilege separation), then the CMD as `student`.
set -e
mkdir -p /run/sshd
/usr/sbin/sshd -E /tmp/sshd.log
export HOME=/home/student USER=student
exec setpriv --reuid=1000 --regid=1000 --init-groups "$@"
