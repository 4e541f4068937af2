# The broker: a small, non-root image. Build: docker build -t vssid-broker .
# Dependencies install at the exact versions of requirements.lock, each checked against the
# lock's hashes (--require-hashes); EXTRAS picks the optional parts (the PostgreSQL driver by
# default; add otel for OpenTelemetry export). The lock covers every extra: locked_subset.py
# picks the blocks this install needs, so no test tool reaches the image.
FROM python:3.11-slim AS build
ARG EXTRAS=postgresql
WORKDIR /src
COPY pyproject.toml setup.py README.md requirements.lock ./
COPY deploy/image/locked_subset.py ./
COPY src ./src
COPY migrations ./migrations
RUN python -m venv /opt/venv \
    && /opt/venv/bin/python locked_subset.py requirements.lock ".[${EXTRAS}]" > locked.txt \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r locked.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps ".[${EXTRAS}]" \
    && /opt/venv/bin/pip check

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app vssid && mkdir -p /app/var && chown vssid /app/var
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001
EXPOSE 8000
# Probes the broker on its default port; docker-compose.yml gives the simulator its own probe.
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["vssid-broker", "serve", "--host", "0.0.0.0", "--port", "8000"]
