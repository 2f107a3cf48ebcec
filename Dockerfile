# syntax=docker/dockerfile:1
#
# One image for the whole mesh; the service is chosen by the command:
#   docker run IMAGE twin_orchestrator | forecasting_svc | biometric_svc | pharmacogenomics_svc
# Deployed by the Helm chart in k8s/novamind (see k8s/README.md).

# The base is pinned by tag; pin it by digest too (python:3.11.7-slim-bookworm@sha256:...)
# once the registry mirror the build runs against is known. `make image` builds
# without any registry: it passes a Debian bookworm rootfs made by mmdebstrap
# (python3, python3-venv, python-is-python3, passwd) as PYTHON_IMAGE.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# ---------------------------------------------------------------------------
# builder: a venv holding the project and its pinned dependencies
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code-only change reuses
# this (multi-GB) layer. The stubs are generated with the same pinned grpcio-tools.
COPY pyproject.toml README.md ./

# torch==2.13.0 on PyPI pulls the CUDA build (several GB). The CPU wheel
# (2.13.0+cpu, which satisfies the ==2.13.0 pin) comes from PyTorch's CPU index,
# or, where that index cannot be reached, from a directory of wheels mounted into
# the build (WHEELS_DIR; `make image` mounts the CPU wheel that lies on the build
# machine and sets TORCH_INDEX_URL empty).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG WHEELS_DIR=
# A CA bundle mounted into the build, for networks whose TLS proxy re-signs the
# package index's certificate (only pip reads it; nothing is copied into the image).
ARG PIP_CA_BUNDLE=

RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > /tmp/requirements.txt \
 && export PIP_CERT="${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" \
 && pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
      ${WHEELS_DIR:+--find-links "$WHEELS_DIR"} -r /tmp/requirements.txt \
 && python -c "import torch; assert not torch.version.cuda, 'CUDA build of torch in the image'"

# Generated stubs live in the top-level `novamind` package (the proto package
# root); they must exist before `pip install .` so the package is installed.
COPY protos ./protos
# As `make protos` does: stubs for our contracts (protos/novamind; third_party/ holds
# upstream files shipped for grpcurl) and the descriptor set, with the proto
# comments, that reflection serves.
RUN python -m grpc_tools.protoc -I protos \
      --python_out=. --pyi_out=. --grpc_python_out=. $(find protos/novamind -name '*.proto') \
 && python -m grpc_tools.protoc -I protos --include_imports --include_source_info \
      --descriptor_set_out=novamind/descriptor_set.binpb $(find protos/novamind -name '*.proto') \
 && find novamind -type d -exec touch {}/__init__.py \;

COPY common ./common
COPY forecasting_svc ./forecasting_svc
COPY biometric_svc ./biometric_svc
COPY pharmacogenomics_svc ./pharmacogenomics_svc
COPY twin_orchestrator ./twin_orchestrator
COPY worlds ./worlds

# The smoke imports run from / so they load the installed packages, not /src.
# Bytecode is compiled here: the runtime's root filesystem is read-only, so pods
# could never cache it and would recompile torch on every start. torch's own
# test helpers hold Python 3.12-only syntax and are never imported at run time.
RUN export PIP_CERT="${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" \
 && pip install --no-deps . \
 && cd / \
 && python -c "import twin_orchestrator, forecasting_svc, biometric_svc, pharmacogenomics_svc" \
 && python -c "from novamind.twin.v1 import twin_pb2_grpc" \
 && pip check \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      -x '/torch/testing/_internal/' /opt/venv/lib

# ---------------------------------------------------------------------------
# runtime: the venv, a non-root user, nothing else
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="novamind-mesh" \
      org.opencontainers.image.description="Novamind digital-twin gRPC mesh (orchestrator and ML services)" \
      org.opencontainers.image.source="https://example.invalid/novamind/mesh"

# Same UID/GID the chart's securityContext runs as (runAsUser/runAsGroup 10001).
RUN groupadd --system --gid 10001 novamind \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin novamind \
 && mkdir -p /app/var/audit /app/var/keys /app/var/models /app/var/store /etc/novamind/tls \
 && chown -R 10001:10001 /app/var

COPY --from=builder /opt/venv /opt/venv

# The root filesystem is read-only in the cluster: no bytecode is written, every
# writable path (var/*, /tmp, caches) is a mounted volume. The var/ paths are
# relative to /app, the working directory, and the chart mounts volumes there.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    NOVAMIND_TLS_DIR=/etc/novamind/tls \
    NOVAMIND_MODEL_DIR=/app/var/models \
    NOVAMIND_KEY_DIR=/app/var/keys \
    NOVAMIND_STORE_PATH=/app/var/store/twin.sqlite

WORKDIR /app
USER 10001:10001

# Main mTLS ports 50050-50053; plaintext health-only ports 51050-51053.
EXPOSE 50050 50051 50052 50053 51050 51051 51052 51053

# Exec form: python is PID 1 and receives SIGTERM directly (graceful shutdown),
# and no shell is needed at runtime. Kubernetes' native gRPC probes replace a
# HEALTHCHECK.
ENTRYPOINT ["python", "-m"]
CMD ["twin_orchestrator"]
