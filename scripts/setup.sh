#!/usr/bin/env bash
# One-time setup of a fresh Debian machine, one line per step: the system packages the tests and
# the demo need, the npm packages exactly as locked (`npm ci`), then the build. Leaves the clone as
# it found it. A step's own output is shown only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
  local name=$1
  shift
  local started=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    echo "$name: failed"
    exit 1
  fi
  echo "$name: done in $((SECONDS - started)) s"
}

# Headers that @confluentinc/kafka-javascript (whose librdkafka runs the mock Kafka cluster of the
# tests and the demo) builds against, Chromium for the agent page's browser test, Prometheus
# (2.42 on Debian 12) for the fleet view's test, and the brokers of the RabbitMQ (3.10), BullMQ
# (Redis 7.0) and NATS (2.9) tests. Each test starts its own servers on free loopback ports
# (test/peers/); the packages' own services, where an init system starts them, are left alone.
debs=(zlib1g-dev libssl-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev chromium prometheus
  rabbitmq-server redis-server nats-server)
if dpkg -s "${debs[@]}" >/dev/null 2>&1; then
  echo "Debian packages: already installed"
else
  run "Debian packages (${debs[*]})" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${debs[*]}"
fi

# No prebuilt binary of the confluent client is reachable here: it builds against the system
# libraries (about 2 minutes). The lock file records every platform's optional binaries, so
# `npm ci` takes it as it is and never rewrites it.
export CKJS_LINKING=dynamic
run "npm packages (npm ci, building the confluent client)" npm ci --no-audit --no-fund --loglevel=error
run "build (Wasm core and dist/)" npm run --silent build
