#!/bin/sh
# Smoke-test the service's image: run it, wait for /health, then /version, one /verify of two
# images (a 200 with a verdict), one bad upload (a 400), and /verify again; stop and remove it.
#   container/smoke.sh IMAGE_A IMAGE_B      (env: CONTAINER=podman|docker, IMAGE, PORT)
set -eu
CONTAINER=${CONTAINER:-podman}
IMAGE=${IMAGE:-localhost/backbone-serve:latest}
PORT=${PORT:-18080}
A=$1 B=$2
NAME=backbone-serve-smoke
URL=http://127.0.0.1:$PORT

$CONTAINER rm -f "$NAME" >/dev/null 2>&1 || true
$CONTAINER run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
trap '$CONTAINER logs "$NAME" 2>&1 | tail -5; $CONTAINER rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 60); do curl -fsS "$URL/health" >/dev/null 2>&1 && break; sleep 1; done
echo "GET /health:  $(curl -fsS "$URL/health")"
echo "GET /version: $(curl -fsS "$URL/version" | cut -c1-160)..."
verdict=$(curl -fsS -F "image_a=@$A" -F "image_b=@$B" "$URL/verify")
echo "POST /verify: $verdict"
echo "$verdict" | grep -q '"verdict"'
status=$(curl -s -o /dev/null -w '%{http_code}' -F "image_a=@$0;type=image/png" -F "image_b=@$B" "$URL/verify")
echo "POST /verify with a shell script as image_a: HTTP $status"
[ "$status" = 400 ]
curl -fsS -F "image_a=@$A" -F "image_b=@$B" "$URL/verify" | grep -q '"verdict"'
echo "user in the container: $($CONTAINER exec "$NAME" id -un)"
echo "smoke test passed"
