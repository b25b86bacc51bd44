#!/usr/bin/env bash
# Start a CNCF distribution registry on ADDRESS (default 127.0.0.1:5000) unless one
# already answers there. It keeps running in the background after this script
# exits; its data and config live under /var/lib/atomic-reactor/registry-PORT.
set -euo pipefail

ADDRESS=${1:-127.0.0.1:5000}
PORT=${ADDRESS##*:}
ROOT=${ATOMIC_REACTOR_STATE:-/var/lib/atomic-reactor}/registry-$PORT

answers() { curl -fsS -o /dev/null --max-time 2 "http://$ADDRESS/v2/" 2>/dev/null; }

if answers; then
    exit 0
fi
if (exec 3<>"/dev/tcp/${ADDRESS%:*}/$PORT") 2>/dev/null; then
    echo "ensure-registry: error: something that is not a registry listens on $ADDRESS" >&2
    exit 1
fi
mkdir -p "$ROOT/data"
cat > "$ROOT/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $ROOT/data
  delete:
    enabled: true
http:
  addr: $ADDRESS
YAML
echo "ensure-registry: starting a registry on $ADDRESS (data in $ROOT/data)"
setsid nohup docker-registry serve "$ROOT/config.yml" >"$ROOT/registry.log" 2>&1 < /dev/null &
for _ in $(seq 1 50); do
    answers && exit 0
    sleep 0.2
done
echo "ensure-registry: error: the registry on $ADDRESS did not start (log: $ROOT/registry.log)" >&2
exit 1
