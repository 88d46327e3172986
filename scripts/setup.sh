#!/usr/bin/env bash
# One-time setup of a fresh Debian machine: the system packages pathwise's tests and demo need,
# then the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headers that @confluentinc/kafka-javascript (whose librdkafka runs the mock Kafka cluster of the
# tests and the demo) builds against, and Chromium for the agent page's browser test.
debs=(zlib1g-dev libssl-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev chromium)
if ! dpkg -s "${debs[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
fi

# No prebuilt binary of the confluent client is reachable here: build it against the system libraries.
export CKJS_LINKING=dynamic
# `npm install` rather than `npm ci`: npm 11 leaves the other platforms' optional binaries (deno,
# rollup) out of the lock file and `npm ci` then refuses it as out of sync; install still
# installs the locked versions.
npm install --no-audit --no-fund --loglevel=error
