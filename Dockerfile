# The connector as an Airbyte custom connector image, FROM scratch: nothing is pulled.
# `make image` builds it for linux/amd64 and linux/arm64 (with docker where a daemon
# answers, else with buildah) from the context it stages in .cache/image, one folder
# per platform, which TARGETARCH picks: the static binary of the platform, a static
# busybox as /bin/sh because Airbyte's launcher starts every connector container as
# `sh -c 'eval "$AIRBYTE_ENTRYPOINT <command> ..." > pipes'`, and an empty /airbyte.
# VERSION is Cargo.toml's version (`make image` passes it).
FROM scratch
ARG TARGETARCH
ARG VERSION
COPY ${TARGETARCH}/sh /bin/sh
COPY ${TARGETARCH}/destination-kinesis /destination-kinesis
# Airbyte puts the config files in the working directory; its owner is the user
# below, so the connector may write there too.
COPY --chown=1000:1000 ${TARGETARCH}/airbyte /airbyte
WORKDIR /airbyte
# Airbyte launches connectors as non-root. Numeric, since the image has no /etc/passwd.
USER 1000:1000
ENV AIRBYTE_ENTRYPOINT="/destination-kinesis"
ENTRYPOINT ["/destination-kinesis"]
LABEL io.airbyte.name="airbyte/destination-kinesis" \
      io.airbyte.version="${VERSION}" \
      org.opencontainers.image.title="destination-kinesis" \
      org.opencontainers.image.description="Airbyte destination for Amazon Kinesis Data Streams" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
