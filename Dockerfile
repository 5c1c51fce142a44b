FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 FAILOVER_HOST=0.0.0.0 FAILOVER_DATA_DIR=/var/lib/failover
WORKDIR /app
COPY pyproject.toml README.md ./
COPY failover ./failover
RUN pip install . && useradd --system --home /var/lib/failover failover \
    && mkdir -p /var/lib/failover && chown failover /var/lib/failover
COPY config ./config
COPY runbooks ./runbooks
USER failover
EXPOSE 8000
CMD ["failover", "web"]
