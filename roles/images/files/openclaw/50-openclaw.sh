# ml-workshop OpenClaw Showcase: this student's own OpenClaw gateway, started with their server.
# Sourced by mlw-user-start (as root, STUDENT/WORK/STATE/log set) from /etc/ml-workshop/start.d/.
#  - state, config, log and the gateway token in ~/work/.openclaw (kept across restarts); the token
#    is generated once (40 characters, 0600, the student's) and is the only one the gateway accepts
#  - the gateway listens on MLW_OPENCLAW_GATEWAY_PORT in the container; the hub publishes it on the
#    student's stable host port (MLW_PORT_OPENCLAW) and the start page shows address and token
#  - ~/openclaw.md: the getting-started page with this student's address and token
#  - MLW_OPENCLAW_GATEWAY=no switches the gateway off (e.g. a profile that only wants the CLI)
case "${MLW_OPENCLAW_GATEWAY:-yes}" in
  no|false|0|off) log "OpenClaw gateway: off (MLW_OPENCLAW_GATEWAY)"; return 0 ;;
esac
oc_dir="$WORK/.openclaw"
oc_port="${MLW_OPENCLAW_GATEWAY_PORT:-18789}"
install -d -m 0700 -o "$STUDENT" -g "$STUDENT" "$oc_dir" "$oc_dir/state"
# Locks under state/tmp belong to a container that is gone (this one is fresh). The gateway's owner
# lease (in its state database) names the old container's host name and pid: the hub gives every
# start of a student's server the same host name, so the gateway finds that owner dead and takes
# the lease over instead of refusing to start until it expires.
rm -rf "$oc_dir/state/tmp"
if [ ! -s "$oc_dir/gateway-token" ]; then
  # (not `tr </dev/urandom | head`: tr's SIGPIPE fails the start under pipefail)
  ( umask 077; /opt/ml-workshop/venv/bin/python -c 'import secrets, string
print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40)), end="")' > "$oc_dir/gateway-token" )
  log "OpenClaw: a gateway token was generated (kept in $oc_dir/gateway-token)"
fi
chown "$STUDENT:$STUDENT" "$oc_dir/gateway-token"
chmod 0600 "$oc_dir/gateway-token"
# The settings the workshop needs; a student's own additions go to openclaw.local.json (merged).
python3 - "$oc_dir" "$oc_port" <<'PY'
import json, os, sys
d, port = sys.argv[1], int(sys.argv[2])
cfg = {"gateway": {"mode": "local", "port": port, "bind": "lan", "auth": {"mode": "token"}}}
local = os.path.join(d, "openclaw.local.json")
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
if os.path.exists(local):
    try:
        with open(local, encoding="utf-8") as f:
            extra = json.load(f)
        if isinstance(extra, dict):
            extra.pop("gateway", None)  # port, bind and auth stay the workshop's
            cfg = merge(extra, cfg)
    except ValueError as e:
        print(f"[mlw-start] OpenClaw: {local} is not JSON ({e}); ignored")
with open(os.path.join(d, "openclaw.json"), "w", encoding="utf-8") as f:
    json.dump(cfg, f, indent=2)
PY
chown "$STUDENT:$STUDENT" "$oc_dir/openclaw.json"
oc_host="${MLW_SSH_HOST:-<server>}"
oc_public="${MLW_PORT_OPENCLAW:-$oc_port}"
cat > "/home/$STUDENT/openclaw.md" <<MD
# Your OpenClaw gateway

- Address: \`ws://${oc_host}:${oc_public}\` (web control UI: http://${oc_host}:${oc_public}/)
- Your token: \`$(cat "$oc_dir/gateway-token")\` (also in \`~/work/.openclaw/gateway-token\`; keep it to yourself:
  whoever has it can use your gateway)
- Check it from a terminal here: \`openclaw gateway probe --url ws://127.0.0.1:${oc_port} --token "\$(cat ~/work/.openclaw/gateway-token)"\`
- Settings: add your own to \`~/work/.openclaw/openclaw.local.json\` (models, providers) and restart your
  server; the gateway's port and token stay the workshop's.
- State and log: \`~/work/.openclaw/state\`, \`~/work/.openclaw/gateway.log\` (kept across restarts).
MD
chown "$STUDENT:$STUDENT" "/home/$STUDENT/openclaw.md"
# As the student, in the background (orphaned to PID 1, which reaps it).
(
  cd "$oc_dir"
  OPENCLAW_CONFIG_PATH="$oc_dir/openclaw.json" OPENCLAW_STATE_DIR="$oc_dir/state" \
  OPENCLAW_GATEWAY_TOKEN="$(cat "$oc_dir/gateway-token")" HOME="/home/$STUDENT" \
    setpriv --reuid="$STUDENT" --regid="$STUDENT" --init-groups -- \
    openclaw gateway run >>"$oc_dir/gateway.log" 2>&1 </dev/null &
)
log "OpenClaw gateway starting on port ${oc_port} (published as ${oc_host}:${oc_public}); see ~/openclaw.md"
