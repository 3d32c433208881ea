#!/usr/bin/env bash
# The README's main job on a fresh machine: build hookrun, bring up the demo Compose project (its image built
# offline from demo/image), then run `hookrun pre-upgrade` on the repo's hooks.toml. Says what it does as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

if [ ! -x /bin/busybox ]; then
  say "installing busybox-static (the demo image's only program)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static
fi
if [ ! -x target/release/hookrun ]; then
  say "building hookrun (release). The first build compiles wasmtime, the WASM hooks' runtime: about 10 minutes on 2 cores"
fi
cargo build --release --quiet -p hookrun --bin hookrun
cp /bin/busybox demo/image/busybox
say "starting the demo deployment: Compose project hookrun-demo (db, app, web), image built offline if missing"
COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -p hookrun-demo -f demo/docker-compose.yml up -d 2>&1 | sed "s/^/    /"
say "running: hookrun pre-upgrade --version ${1:-1.2.3}"
target/release/hookrun pre-upgrade --version "${1:-1.2.3}"
