# The connector as an Airbyte custom connector image: the static binary and nothing else.
# Build the binary first with `make static` (or `make image`, which does both).
FROM scratch
COPY target/x86_64-unknown-linux-musl/release/destination-kinesis /destination-kinesis
ENV AIRBYTE_ENTRYPOINT="/destination-kinesis"
ENTRYPOINT ["/destination-kinesis"]
LABEL io.airbyte.name="airbyte/destination-kinesis"
LABEL io.airbyte.version="0.1.0"
