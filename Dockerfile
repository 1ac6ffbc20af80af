# One image for every portalbridge process: `docker compose up` runs listen, api, worker and
# relay from it (see docker-compose.yml); `docker run IMAGE` alone runs `portalbridge serve`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY engine engine
COPY mpi mpi
COPY inbound inbound
COPY outbound outbound
# Every dependency at the version constraints.txt pins (pyproject.toml keeps ranges).
RUN pip wheel --no-cache-dir -c constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /srv/portalbridge portalbridge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY routing.yaml /etc/portalbridge/routing.yaml
WORKDIR /srv/portalbridge
USER portalbridge
# MALLOC_ARENA_MAX: glibc keeps freed memory in one arena per thread; with many threads the
# process's RSS climbs with every peak (measured: bench/bench_memory.py, README "Memory").
ENV PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PORTALBRIDGE_CONFIG=/etc/portalbridge/routing.yaml \
    PORTALBRIDGE_BIND_HOST=0.0.0.0
EXPOSE 2575 8080
ENTRYPOINT ["portalbridge"]
CMD ["serve"]
