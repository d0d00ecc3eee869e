# The one gridhub image: every service runs from it as `gridhub service NAME`
# (see docker-compose.yml). Configuration comes only from GRIDHUB_* variables.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir uv==0.13.9

# faust-streaming publishes Linux wheels for x86_64 only; on other
# architectures (arm64 servers, Apple silicon) it compiles from source.
RUN if [ "$(dpkg --print-architecture)" != "amd64" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential \
        && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the product itself (README.md is the package's readme, needed to build it). The town
# simulation and the benchmark are applications for a checkout, not for a server: they stay out.
COPY README.md ./
COPY foundation ./foundation
COPY schemas ./schemas
COPY connectors ./connectors
COPY streams ./streams
COPY warehouse ./warehouse
COPY gridhub ./gridhub
RUN uv sync --frozen --no-dev \
    && .venv/bin/python -m compileall -q foundation schemas connectors streams warehouse gridhub

ENV PATH="/app/.venv/bin:${PATH}" \
    GRIDHUB_DATA_DIR=/data

# Run as an unprivileged user (uid 10001: deploy/make-secrets.sh gives the services' Kafka
# passwords to it). /data and /tokens (the token book the gateway, the sink and the screen share, see
# docker-compose.yml) are created here, owned by that user, so named volumes mounted on them
# start out writable.
RUN groupadd --system --gid 10001 gridhub \
    && useradd --system --uid 10001 --gid gridhub --create-home --home-dir /home/gridhub gridhub \
    && mkdir -p /data /tokens \
    && chown gridhub:gridhub /data /tokens \
    && chmod 700 /tokens
USER gridhub

# patrol gateway, sink's read-only SQL endpoint
EXPOSE 8088 8089

ENTRYPOINT ["gridhub"]
CMD ["--help"]
