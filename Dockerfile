# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain, ship a slim image running as non-root.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/harrier

FROM debian:bookworm-slim
# ca-certificates: the system roots for https:// upstreams; tini: PID 1 that reaps the
# orphaned grandchildren of supervised [[apps]] and forwards signals to harrier.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin harrier
COPY --from=build /src/target/release/harrier /usr/local/bin/harrier
COPY deploy/container.toml /etc/harrier/harrier.toml
COPY examples/site /app
ENV HARRIER_CONFIG=/etc/harrier/harrier.toml
USER harrier
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "harrier"]
CMD ["serve", "/app"]
