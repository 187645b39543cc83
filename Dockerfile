# The connector as an Airbyte custom connector image, for linux/amd64 and linux/arm64:
# the static binary of the image's platform, plus a static shell because Airbyte's
# launcher starts every connector container as
# `sh -c 'eval "$AIRBYTE_ENTRYPOINT <command> ..." > pipes'`.
# Build the binaries first with `make static` (or `make image`, which does both), and
# pass the version: `--build-arg VERSION=...` (`make image` passes Cargo.toml's).
# Needs BuildKit (the default builder since Docker 23), which sets TARGETARCH.

# One stage per platform, from the paths `make static` writes; BuildKit builds only
# the one that TARGETARCH names.
FROM scratch AS binary-amd64
COPY target/x86_64-unknown-linux-musl/release/destination-kinesis /destination-kinesis

FROM scratch AS binary-arm64
COPY target/aarch64-unknown-linux-musl/release/destination-kinesis /destination-kinesis

FROM binary-${TARGETARCH} AS binary

# Runs on the build machine's platform and only unpacks the target platform's
# busybox-static, so building the arm64 image on x86-64 needs no emulator.
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS shell
ARG TARGETARCH
ARG BUILDARCH
ARG VERSION
RUN test -n "$VERSION" || { echo "pass --build-arg VERSION=<version> (make image does)"; exit 1; }
RUN if [ "$TARGETARCH" != "$BUILDARCH" ]; then dpkg --add-architecture "$TARGETARCH"; fi \
 && apt-get update \
 && cd /tmp && apt-get download "busybox-static:$TARGETARCH" \
 && dpkg-deb -x busybox-static_*_"$TARGETARCH".deb /tmp/busybox \
 && mkdir -p /rootfs/bin /rootfs/airbyte \
 && cp /tmp/busybox/bin/busybox /rootfs/bin/sh

FROM scratch
ARG VERSION
COPY --from=shell /rootfs/bin/sh /bin/sh
COPY --from=binary /destination-kinesis /destination-kinesis
# Airbyte puts the config files in the working directory; its owner is the user
# below, so the connector may write there too.
COPY --from=shell --chown=1000:1000 /rootfs/airbyte /airbyte
WORKDIR /airbyte
# Airbyte launches connectors as non-root. Numeric, since the image has no /etc/passwd.
USER 1000:1000
ENV AIRBYTE_ENTRYPOINT="/destination-kinesis"
ENTRYPOINT ["/destination-kinesis"]
LABEL io.airbyte.name="airbyte/destination-kinesis"
LABEL io.airbyte.version="${VERSION}"
