#!/usr/bin/env bash
# The README's main job on a fresh machine: build hookrun, bring up the demo Compose project (its image built
# offline from demo/image), then run `hookrun pre-upgrade` on the repo's hooks.toml. Says what it does as it goes.
#   bash demo/run.sh                 pre-upgrade backup of 1.2.3 (or: bash demo/run.sh VERSION)
#   bash demo/run.sh upgrade         hookrun upgrade 1.2.3 -> 1.3.0 behind its health gate (exit 0)
#   bash demo/run.sh upgrade-broken  the same with a 1.3.0 whose healthcheck fails: rolled back (exit 5)
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
export COMPOSE_DOCKER_CLI_BUILD=0
case "${1:-}" in
  upgrade | upgrade-broken)
    if [ "$1" = upgrade-broken ]; then export DEMO_BROKEN=yes; fi
    say "running: hookrun upgrade --version 1.2.3 --to 1.3.0${DEMO_BROKEN:+ (DEMO_BROKEN=yes: its healthcheck fails)}"
    target/release/hookrun upgrade --version 1.2.3 --to 1.3.0
    ;;
  *)
    say "running: hookrun pre-upgrade --version ${1:-1.2.3}"
    target/release/hookrun pre-upgrade --version "${1:-1.2.3}"
    ;;
esac
