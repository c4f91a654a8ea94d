# mcpvisor serve as a container: the gateway runs as a non-root user under tini, which is PID 1,
# forwards SIGTERM to it and reaps orphaned grandchildren of the supervised servers.
#
#   docker build -t mcpvisor .
#   docker run --rm -p 8080:8080 -v $PWD/config.json:/etc/mcpvisor/config.json:ro \
#     -e MCPVISOR_GATEWAY_TOKEN="$(openssl rand -hex 32)" mcpvisor
#
# Servers started with npx or uvx need Node or uv in the image: extend it (FROM mcpvisor).
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra gateway --no-install-project
COPY mcpvisor ./mcpvisor
RUN uv sync --frozen --no-dev --extra gateway

FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 mcpvisor \
    && useradd --uid 10001 --gid mcpvisor --home-dir /home/mcpvisor --create-home mcpvisor
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/mcpvisor
EXPOSE 8080
ENTRYPOINT ["tini", "--", "mcpvisor", "serve"]
CMD ["/etc/mcpvisor/config.json", "--http", "0.0.0.0:8080"]
