# syntax=docker/dockerfile:1
# Two stages: the build stage installs the pinned, hashed dependencies (requirements.lock) into a virtual
# environment and adds failover itself as a wheel; the runtime stage copies that environment, adds the
# system libraries WeasyPrint needs (Pango) and runs as a fixed, unprivileged UID.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/failover \
    && /opt/failover/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY failover ./failover
RUN /opt/failover/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/failover/bin/pip install --no-deps /wheels/failover-*.whl

FROM python:3.11-slim
ARG UID=10001
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "$UID" failover \
    && useradd --system --uid "$UID" --gid "$UID" --home-dir /var/lib/failover --shell /usr/sbin/nologin failover \
    && mkdir -p /var/lib/failover/metrics \
    && chown -R "$UID:$UID" /var/lib/failover
COPY --from=build /opt/failover /opt/failover
ENV PATH=/opt/failover/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FAILOVER_HOST=0.0.0.0 \
    FAILOVER_PORT=8000 \
    FAILOVER_DATA_DIR=/var/lib/failover \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/failover/metrics
WORKDIR /app
COPY config ./config
COPY runbooks ./runbooks
COPY gunicorn.conf.py ./
USER ${UID}:${UID}
EXPOSE 8000
# The web process's health; docker-compose.yml gives the worker and beat their own (heartbeat files).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FAILOVER_PORT', '8000'), timeout=3)"]
CMD ["failover", "web"]
