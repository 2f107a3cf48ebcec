#!/usr/bin/env bash
# `make image`: builds the mesh image with Debian's buildah (chroot isolation, vfs
# storage) on a Debian bookworm root filesystem made by mmdebstrap, so no container
# registry and no Docker engine are needed. The Dockerfile is the one a registry
# build uses; only its base image and the source of the CPU torch wheel differ.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/novamind-mesh:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/novamind-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# A directory holding the CPU torch wheel (torch-2.13.0+cpu-...whl); when it exists the
# build takes torch from it instead of PyTorch's CPU index.
WHEELS_DIR=${WHEELS_DIR:-/opt/wheels}
STATE=var/image
BUILDAH=(buildah --storage-driver vfs)

mkdir -p "$STATE"
if ! "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "== base: Debian bookworm minbase + python3 (mmdebstrap)"
  rootfs="$STATE/base-rootfs.tar"
  # python-is-python3: the Dockerfile calls `python`; passwd: useradd for the runtime user.
  [ -s "$rootfs" ] || mmdebstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
    bookworm "$rootfs" \
    "deb $DEBIAN_MIRROR bookworm main" "deb $DEBIAN_SECURITY_MIRROR bookworm-security main"
  ctr=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" add "$ctr" "$rootfs" /
  "${BUILDAH[@]}" config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["python3"]' "$ctr"
  "${BUILDAH[@]}" commit --rm "$ctr" "$BASE_IMAGE"
  rm -f "$rootfs"
fi

# The build machine's CA bundle, for pip behind a TLS-intercepting proxy.
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ca_args=()
if [ -s "$CA_BUNDLE" ]; then
  ca_args=(--build-arg PIP_CA_BUNDLE=/run/build-ca.pem --volume "$(realpath "$CA_BUNDLE"):/run/build-ca.pem:ro")
fi

wheel_args=()
if compgen -G "$WHEELS_DIR/torch-*+cpu-*.whl" >/dev/null; then
  wheel_args=(--build-arg TORCH_INDEX_URL= --build-arg WHEELS_DIR=/wheels
              --volume "$(realpath "$WHEELS_DIR"):/wheels:ro")
fi

echo "== image: $IMAGE (buildah bud, chroot isolation, vfs storage)"
# No --layers: with vfs storage every cached step is a full copy of the root
# filesystem (tens of GB for this image); each stage is committed once instead.
"${BUILDAH[@]}" bud --isolation chroot \
  --build-arg PYTHON_IMAGE="$BASE_IMAGE" "${wheel_args[@]}" "${ca_args[@]}" \
  -f Dockerfile -t "$IMAGE" .
"${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -F "${IMAGE%:*}" || true
