#!/usr/bin/env bash
# `make image-check`: runs the whole mesh from the image with podman — read-only root
# filesystem, the chart's non-root user, production secrets (NOVAMIND_REQUIRE_SECRETS=1),
# mutual TLS — and calls it with grpcurl: health on every plaintext port, reflection
# and a GenerateInsights call on the orchestrator. Then SIGTERM, and every container
# must exit 0. Uses the trained models in var/models (`make train` makes them).
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/novamind-mesh:dev}
# runc, not crun: Debian 12's crun refuses hosts with hybrid cgroups (v1 controllers
# beside a v2 mount), which runc handles. cgroupfs: no systemd needed.
PODMAN=(podman --storage-driver vfs --runtime "${PODMAN_RUNTIME:-runc}" --cgroup-manager cgroupfs)
PY=${PY:-.venv/bin/python}
GRPCURL=${GRPCURL:-.venv/bin/grpcurl}
RUN=var/image/run
RUNTIME_UID=10001

# Four free loopback port pairs (service port p, health port p + 1000).
read -r -a PORTS <<<"$("$PY" - <<'PYEOF'
import socket
ports = []
while len(ports) < 4:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        try:
            b.bind(("127.0.0.1", port + 1000))
        except OSError:
            continue
        if port + 1000 < 65536 and port not in ports:
            ports.append(port)
print(*ports)
PYEOF
)"
declare -A PORT=([forecasting]=${PORTS[0]} [biometric]=${PORTS[1]} [pharmacogenomics]=${PORTS[2]} [orchestrator]=${PORTS[3]})
declare -A MODULE=([forecasting]=forecasting_svc [biometric]=biometric_svc [pharmacogenomics]=pharmacogenomics_svc [orchestrator]=twin_orchestrator)
ORDER=(forecasting biometric pharmacogenomics orchestrator)

for name in "${ORDER[@]}"; do "${PODMAN[@]}" rm -f "novamind-check-$name" >/dev/null 2>&1 || true; done
rm -rf "$RUN"
mkdir -p "$RUN/secrets" "$RUN/tls" "$RUN/models"
cp var/certs/*.pem "$RUN/tls/"
cp -r var/models/. "$RUN/models/"
# The models were signed with the development artifact key; the other keys are new.
cp var/keys/artifact.key "$RUN/secrets/artifact.key"
for key in pseudonym audit store; do "$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$RUN/secrets/$key.key"; done
for name in "${ORDER[@]}"; do mkdir -p "$RUN/$name/audit" "$RUN/$name/store"; done
chown -R "$RUNTIME_UID:$RUNTIME_UID" "$RUN"
chmod -R go-rwx "$RUN"

cleanup() {
  for name in "${ORDER[@]}"; do "${PODMAN[@]}" rm -f "novamind-check-$name" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

addr() { echo "localhost:${PORT[$1]}"; }
for name in "${ORDER[@]}"; do
  "${PODMAN[@]}" run -d --name "novamind-check-$name" \
    --network host --read-only \
    --ulimit nofile=16384:16384 --ulimit nproc=8192:8192 --user "$RUNTIME_UID:$RUNTIME_UID" --cap-drop ALL \
    --security-opt no-new-privileges --tmpfs /tmp:rw,size=256m,mode=1777 \
    -v "$PWD/$RUN/tls:/etc/novamind/tls:ro" \
    -v "$PWD/$RUN/models:/app/var/models:ro" \
    -v "$PWD/$RUN/secrets:/run/secrets/novamind:ro" \
    -v "$PWD/$RUN/$name/audit:/app/var/audit" \
    -v "$PWD/$RUN/$name/store:/app/var/store" \
    -e NOVAMIND_HOST=127.0.0.1 -e NOVAMIND_PORT="${PORT[$name]}" \
    -e NOVAMIND_REQUIRE_SECRETS=1 \
    -e NOVAMIND_PSEUDONYM_KEY_FILE=/run/secrets/novamind/pseudonym.key \
    -e NOVAMIND_AUDIT_KEY_FILE=/run/secrets/novamind/audit.key \
    -e NOVAMIND_ARTIFACT_KEY_FILE=/run/secrets/novamind/artifact.key \
    -e NOVAMIND_STORE_KEY_FILE=/run/secrets/novamind/store.key \
    -e NOVAMIND_FORECASTING_ADDR="$(addr forecasting)" \
    -e NOVAMIND_BIOMETRIC_ADDR="$(addr biometric)" \
    -e NOVAMIND_PHARMACOGENOMICS_ADDR="$(addr pharmacogenomics)" \
    "$IMAGE" "${MODULE[$name]}" >/dev/null
done

echo "== health (plaintext health-only ports)"
for name in "${ORDER[@]}"; do
  health=$((PORT[$name] + 1000))
  for _ in $(seq 1 120); do
    # The health-only port serves no reflection: grpcurl reads the shipped health proto.
    if "$GRPCURL" -plaintext -import-path protos/third_party -proto grpc/health/v1/health.proto \
         "localhost:$health" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
      echo "$name: SERVING (:$health)"; continue 2
    fi
    sleep 1
  done
  echo "$name never became SERVING; its log:"; "${PODMAN[@]}" logs "novamind-check-$name" | tail -30
  exit 1
done

echo "== the container: user and read-only root"
"${PODMAN[@]}" exec novamind-check-orchestrator id -u | grep -qx "$RUNTIME_UID"
if "${PODMAN[@]}" exec novamind-check-orchestrator touch /app/written 2>/dev/null; then
  echo "root filesystem is writable"; exit 1
fi
echo "uid $RUNTIME_UID, root filesystem read-only"

CERTS=(-cacert "$RUN/tls/ca.pem" -cert "$RUN/tls/operator.pem" -key "$RUN/tls/operator-key.pem")
echo "== reflection (mTLS, operator identity)"
"$GRPCURL" "${CERTS[@]}" "$(addr orchestrator)" list | grep -qx novamind.twin.v1.DigitalTwinService
echo "== GenerateInsights through the whole mesh"
"$PY" - >"$RUN/request.json" <<'PYEOF'
# One synthetic patient (180 days of symptoms, wearables, genotype, medications).
from datetime import UTC, datetime, time, timedelta
from google.protobuf import json_format
from common.synthetic import CohortConfig, generate_cohort
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.patient_bundle import patient_data
cohort = generate_cohort(CohortConfig(n_patients=20, n_days=180, seed=11))
start = datetime.combine(cohort.config.start_date, time(), tzinfo=UTC)
patient = str(cohort.patients.patient_id.iloc[0])
request = twin_pb2.GenerateInsightsRequest(
    patient_id="IMAGE-CHECK-0001", data=patient_data(cohort, patient, start + timedelta(days=179))
)
print(json_format.MessageToJson(request))
PYEOF
"$GRPCURL" "${CERTS[@]}" -max-time 120 -d @ "$(addr orchestrator)" \
  novamind.twin.v1.DigitalTwinService/GenerateInsights <"$RUN/request.json" >"$RUN/response.json"
"$PY" - "$RUN/response.json" <<'PYEOF'
import json, sys
response = json.load(open(sys.argv[1]))
sections = {
    name: response.get(name, {}).get("result", {}).get("status", "missing")
    for name in ("forecast", "biometric", "pharmacogenomics")
}
print("overall risk:", response.get("overallRisk"), "| sections:", sections)
if any(status != "SECTION_STATUS_OK" for status in sections.values()):
    sys.exit("a section did not answer OK")
PYEOF

echo "== SIGTERM: graceful exit"
for name in orchestrator pharmacogenomics biometric forecasting; do
  "${PODMAN[@]}" stop -t 30 "novamind-check-$name" >/dev/null
  code=$("${PODMAN[@]}" inspect "novamind-check-$name" --format '{{.State.ExitCode}}')
  echo "$name exited $code"
  [ "$code" = 0 ]
done
echo "image check passed: $IMAGE"
