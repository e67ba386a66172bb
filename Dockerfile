# syntax=docker/dockerfile:1
#
# One image for the four npsloop services and the console. The arguments choose the service and the command:
#
#   docker build -t npsloop .
#   docker run npsloop nps_scoring serve       # HTTP + Kafka consumers (the default: ingest)
#   docker run npsloop nps_scoring migrate     # Alembic, this service's schema only
#
# What is installed: exactly uv.lock's versions (`--frozen` fails the build instead of
# re-resolving) of the four services and their runtime dependencies, selected with
# `uv sync --package nps-<service>` for each service. Not `--all-packages`: the virtual workspace
# root depends on `nps-kit[dev]`, which would put the embedded dev stack (the Tansu broker
# binary, embedded PostgreSQL, an SMTP sink) into a production image. Measured: the virtualenv
# selected this way is ~80 MB; with `--all-packages` it is ~140 MB.
#
# No secrets are baked in: DATABASE_URL, INGEST_API_TOKENS and SMTP_PASSWORD come from the
# environment at run time (compose: `environment:`, Kubernetes: the `npsloop-secrets` Secret).
#
# Checked by hadolint in tests/contract/test_deploy.py (it cannot be built there: no Docker engine).
#
# Reproducibility: pin the base image by digest in CI (--build-arg PYTHON_IMAGE=python:3.11-slim-
# bookworm@sha256:...) to make the image bit-for-bit repeatable; the Python packages are pinned by
# uv.lock with hashes.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The uv that wrote uv.lock (lock format revision 5); installed from PyPI in the build stage only.
ARG UV_VERSION=0.13.9

# --- build: resolve nothing, install from uv.lock into a self-contained virtualenv ------------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/npsloop
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

# Third-party dependencies first, from the lock and the manifests alone, so that this layer
# survives edits to the source.
COPY pyproject.toml uv.lock ./
COPY libs/events/pyproject.toml libs/events/
COPY libs/kit/pyproject.toml libs/kit/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/scoring/pyproject.toml services/scoring/
COPY services/followup/pyproject.toml services/followup/
COPY services/notify/pyproject.toml services/notify/
COPY services/console/pyproject.toml services/console/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace \
        --package nps-ingest --package nps-scoring --package nps-followup --package nps-notify \
        --package nps-console

# Then our own packages, installed as wheels (--no-editable): the virtualenv needs no /src.
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
        --package nps-ingest --package nps-scoring --package nps-followup --package nps-notify \
        --package nps-console

# --- runtime: the same Python, the virtualenv, a non-root user, nothing else ------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="npsloop" \
      org.opencontainers.image.description="npsloop services: ingest, scoring, followup, notify, console" \
      org.opencontainers.image.licenses="Apache-2.0"

# A numeric UID/GID so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 npsloop \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin npsloop

# Owned by root and read-only to the service user; works with a read-only root filesystem
# (bytecode is compiled at build time, nothing is written at run time but to /tmp).
COPY --from=build /opt/npsloop /opt/npsloop

ENV PATH=/opt/npsloop/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json \
    INGEST_HOST=0.0.0.0 \
    SCORING_HOST=0.0.0.0 \
    FOLLOWUP_HOST=0.0.0.0 \
    NOTIFY_HOST=0.0.0.0 \
    CONSOLE_HOST=0.0.0.0

USER 10001:10001
WORKDIR /tmp
# Default ports: ingest 8001, scoring 8002, followup 8003, notify 8004, console 8000
# (<NAME>_PORT overrides);
# every service's Prometheus metrics on 9464 (HTTP_METRICS_PORT overrides).
EXPOSE 8000 8001 8002 8003 8004 9464

# No HEALTHCHECK here: the port depends on the service chosen at run time, so compose and
# Kubernetes each probe /readyz and /livez on the right port.
ENTRYPOINT ["python", "-m"]
CMD ["nps_ingest", "serve"]
