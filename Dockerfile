# syntax=docker/dockerfile:1
#
# Chorus server image: the `chorus` binary and the built web demo on distroless, running as a
# non-root user. Three stages: Rust build, web demo build, runtime.
#
#   docker build -t chorus:dev .
#   docker run --rm -p 1234:1234 --read-only chorus:dev
#
# With --read-only, snapshots still go to /var/lib/chorus, which is only writable if you mount a
# volume there (`-v chorus-data:/var/lib/chorus`); in Kubernetes an emptyDir is mounted there.

ARG RUST_VERSION=1.95
ARG NODE_VERSION=22

# --- Rust build --------------------------------------------------------------------------------
# The same Debian release as the runtime image, so the binary links against the same glibc.
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and the target directory between builds, so changing one
# source file rebuilds one crate, not the dependency tree. The binary is copied out of the cached
# target directory because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p chorus-cli \
 && install -D -m 0755 target/release/chorus /out/chorus \
 && install -d -m 0750 /out/data

# --- Web demo build ----------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS web
WORKDIR /web
# Dependencies first, from the lockfile only, so editing the demo's sources reuses this layer.
COPY web-demo/package.json web-demo/package-lock.json web-demo/.npmrc ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund
COPY web-demo/ ./
RUN npm run build

# --- Runtime -----------------------------------------------------------------------------------
# glibc, libgcc, libssl and CA certificates, no shell, no package manager; user 65532 `nonroot`.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="chorus" \
      org.opencontainers.image.description="Multiplayer collaboration backend for Yjs clients" \
      org.opencontainers.image.source="https://github.com/chorus-collab/chorus" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /out/chorus /usr/local/bin/chorus
COPY --from=build --chown=65532:65532 /out/data /var/lib/chorus
COPY --from=web /web/dist /usr/share/chorus/web
# Defaults for a container; every one can be overridden (the Kubernetes ConfigMap sets them too).
ENV CHORUS_LISTEN=0.0.0.0:1234 \
    CHORUS_DATA_DIR=/var/lib/chorus \
    CHORUS_LOG_FORMAT=json \
    CHORUS_STATIC_DIR=/usr/share/chorus/web
EXPOSE 1234
USER 65532:65532
# SIGTERM (Docker's and Kubernetes' stop signal) makes the server turn not-ready, flush snapshots
# and close sockets with 1001 before it exits 0.
ENTRYPOINT ["/usr/local/bin/chorus"]
CMD ["serve"]
