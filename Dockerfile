# Multi-stage build of the switchboard and bolna-sim binaries. Queries are checked against the
# committed .sqlx/ data, so no database is needed at build time.
FROM rust:1.90-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true
COPY . .
RUN cargo build --release --locked --bin switchboard --bin bolna-sim

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 switchboard
WORKDIR /app
COPY --from=build /src/target/release/switchboard /src/target/release/bolna-sim /usr/local/bin/
COPY config ./config
ENV SWITCHBOARD_CONFIG_DIR=/app/config \
    SWITCHBOARD_ENVIRONMENT=production
USER switchboard
EXPOSE 8080
ENTRYPOINT ["switchboard"]
CMD ["serve"]
