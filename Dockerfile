# The connector as an Airbyte custom connector image: the static binary, plus a
# static shell because Airbyte's launcher starts every connector container as
# `sh -c 'eval "$AIRBYTE_ENTRYPOINT <command> ..." > pipes'`.
# Build the binary first with `make static` (or `make image`, which does both).
FROM debian:bookworm-slim AS shell
RUN apt-get update && apt-get install -y --no-install-recommends busybox-static

FROM scratch
COPY --from=shell /bin/busybox /bin/sh
COPY target/x86_64-unknown-linux-musl/release/destination-kinesis /destination-kinesis
ENV AIRBYTE_ENTRYPOINT="/destination-kinesis"
ENTRYPOINT ["/destination-kinesis"]
LABEL io.airbyte.name="airbyte/destination-kinesis"
LABEL io.airbyte.version="0.1.0"
