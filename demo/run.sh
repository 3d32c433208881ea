#!/usr/bin/env bash
# The README's main job on a fresh machine: build hookrun and the demo image (offline, through the Docker API),
# bring up the demo Compose project if it is not up, then run `hookrun pre-upgrade` on the repo's hooks.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /bin/busybox ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static
fi
cargo build --release --quiet -p hookrun -p hookrun-e2e --bin hookrun --bin hookrun-test-image
target/release/hookrun-test-image >/dev/null
docker-compose -p hookrun-demo -f demo/docker-compose.yml up -d
target/release/hookrun pre-upgrade --version "${1:-1.2.3}"
