#!/usr/bin/env bash
# `make run`: a collector on SQLite and an agent for this machine, then the live feed in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN=.run
PORT=${FIELDPOST_PORT:-8470}
URL=http://127.0.0.1:$PORT
mkdir -p "$RUN/agent"

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM

"$BIN/fieldpost-collector" --db "$RUN/collector.db" serve --listen "127.0.0.1:$PORT" >"$RUN/collector.log" 2>&1 &
pids+=($!)
if ! "$BIN/python" - "$URL/healthz" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
then
  echo "the collector did not start; its log ($RUN/collector.log) says:" >&2
  tail -n 20 "$RUN/collector.log" >&2
  exit 1
fi

cat >"$RUN/agent.toml" <<TOML
# Agent settings for \`make run\` (see README, "Agent configuration").
[agent]
collector_url = "$URL"
state_dir = "$PWD/$RUN/agent"

[schedule]
splay_seconds = 0
TOML

if [ ! -f "$RUN/agent/identity.json" ]; then
  token=$("$BIN/fieldpost-collector" --db "$RUN/collector.db" token create \
    --client "This machine" --site "Local" --demo --uses 1 --expires 10m 2>/dev/null)
  "$BIN/fieldpost-agent" --config "$RUN/agent.toml" enroll --collector "$URL" --token "$token"
fi
TOKEN=$(cat "$RUN/admin-token")
if [ ! -f "$RUN/dashboard-password" ]; then
  "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$RUN/dashboard-password"
  "$BIN/fieldpost-collector" --db "$RUN/collector.db" user add admin --password-stdin <"$RUN/dashboard-password"
fi

# The feed is followed before the agent starts, so its first heartbeat shows up below.
"$BIN/fieldpost" --url "$URL" --token "$TOKEN" alerts --follow &
pids+=($!)
sleep 1
"$BIN/fieldpost-agent" --config "$RUN/agent.toml" run >"$RUN/agent.log" 2>&1 &
pids+=($!)

cat <<MSG

  fieldpost is running: collector $URL (database $RUN/collector.db), agent for $(hostname).
  Dashboard: $URL/  (login admin, password $(cat "$RUN/dashboard-password"); the first login sets up
  two-factor login with an authenticator app, as the owner's account requires)
  The live feed follows below. From another terminal:
    $BIN/fieldpost --url $URL --token $TOKEN alerts --follow
    $BIN/fieldpost --url $URL --token $TOKEN devices
    curl -N -H 'Authorization: Bearer $TOKEN' '$URL/api/v1/feed'
  Logs: $RUN/collector.log, $RUN/agent.log.  Ctrl-C stops everything.

MSG
wait
