# The two commands a new clone needs are `make demo` and `make test`; every
# other target is a step they call.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Our contracts only: protos/third_party holds upstream files shipped for grpcurl.
PROTO_SRC := $(shell find protos/novamind -name '*.proto')
PROTO_STAMP := novamind/.generated
CERT_STAMP := var/certs/ca.pem
# checkov pins versions that clash with the runtime's, so it lives in its own venv.
CHECKOV := .venv-checkov/bin/checkov

.PHONY: all venv protos certs checkov report-deps postgres-deps report-check lint test test-unit test-integration fuzz demo train bench image-deps image image-check clean

all: venv protos certs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $(STAMP)

venv: $(STAMP)

# Stubs are generated into the top-level `novamind` package (the proto package
# root), so the generated imports `from novamind.common.v1 import ...` resolve.
$(PROTO_STAMP): $(STAMP) $(PROTO_SRC)
	rm -rf novamind
	$(PY) -m grpc_tools.protoc -I protos \
	  --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO_SRC)
	# Reflection serves this set so `grpcurl describe` shows the proto comments.
	$(PY) -m grpc_tools.protoc -I protos --include_imports --include_source_info \
	  --descriptor_set_out=novamind/descriptor_set.binpb $(PROTO_SRC)
	find novamind -type d -exec touch {}/__init__.py \;
	touch $(PROTO_STAMP)

protos: $(PROTO_STAMP)

$(CERT_STAMP): $(STAMP)
	$(PY) -m common.certs --out var/certs

certs: $(CERT_STAMP)

$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet checkov==3.3.30

checkov: $(CHECKOV)

# Debian's Chromium renders the HTML insights report in the report check.
report-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (headless report check)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Debian's PostgreSQL server: the store tests start a real one (initdb + pg_ctl) in a temp dir.
postgres-deps:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql (store tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

# Renders the newest report written by `make demo` in headless Chromium and checks it is not blank.
report-check: venv protos report-deps
	@latest=$$(ls -t var/reports/*.html 2>/dev/null | head -1); \
	if [ -z "$$latest" ]; then echo "no report yet: run make demo"; exit 1; fi; \
	$(PY) -m twin_orchestrator.report_check "$$latest" --screenshot var/reports/latest.png

lint: venv protos
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy common forecasting_svc biometric_svc pharmacogenomics_svc twin_orchestrator worlds
	cd protos && ../$(VENV)/bin/buf lint

test: venv protos certs $(CHECKOV) report-deps postgres-deps
	$(PY) -m pytest -q -p no:cacheprovider tests

test-unit: venv protos certs postgres-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

test-integration: venv protos certs report-deps postgres-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/integration tests/e2e

# The long fuzz run: every RPC of the four service processes, >= 20,000 cases, fixed seed;
# rewrites docs/benchmarks/fuzz.md and fails on any UNKNOWN/INTERNAL, hang or crash.
fuzz: venv protos certs
	nice $(PY) -m tests.fuzz --cases 20000

train: venv protos
	$(PY) -m forecasting_svc.train
	$(PY) -m biometric_svc.train
	$(PY) -m pharmacogenomics_svc.train

demo: venv protos certs
	$(PY) -m twin_orchestrator.demo

bench: venv protos certs
	$(PY) -m bench

# The container image, built and run without a registry or a Docker engine:
# Debian's mmdebstrap makes the base root filesystem, buildah builds the
# Dockerfile (chroot isolation, vfs storage), podman runs it. Not part of
# `make test` (a cold build takes several minutes); results in docs/deploy.md.
image-deps:
	@command -v buildah >/dev/null 2>&1 && command -v podman >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 || { \
	  echo "installing Debian's buildah, podman and mmdebstrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    buildah podman mmdebstrap runc uidmap >/dev/null; }

image: image-deps
	k8s/image/build.sh

# Runs the four services from the image (read-only root, non-root user, mTLS,
# production secrets) and calls them with grpcurl; needs trained models.
image-check: image venv protos certs
	$(PY) -m forecasting_svc.train --if-missing
	$(PY) -m biometric_svc.train --if-missing
	$(PY) -m pharmacogenomics_svc.train --if-missing
	k8s/image/check.sh

clean:
	rm -rf novamind var .pytest_cache .mypy_cache .ruff_cache
