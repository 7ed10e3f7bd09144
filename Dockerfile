# syntax=docker/dockerfile:1
# linkbridge: a static binary (the SQLite driver, modernc.org/sqlite, is pure
# Go, so CGO is off) on a distroless base, as a non-root user.
#
#   docker build -t linkbridge .
#   docker run --rm -p 8080:8080 -v linkbridge-data:/data linkbridge \
#     serve --auth-config /etc/linkbridge/auth.json
#
# The build needs the repository's .git for `linkbridge version` to show the
# VCS revision (go build embeds it); without it the revision reads "unknown".

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -trimpath: no build paths in the binary; -buildvcs=auto: the revision in
# `linkbridge version` and linkbridge_build_info.
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=auto go build -trimpath -o /out/linkbridge ./cmd/linkbridge
# The data directory, owned by the distroless nonroot user (65532).
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/linkbridge /usr/local/bin/linkbridge
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
# Every setting is a LINKBRIDGE_* variable (README, Configuration). In a
# container the gateway listens on all interfaces; --dev and --dev-auth are
# refused there (loopback only), so an --auth-config is required.
ENV LINKBRIDGE_ADDR=0.0.0.0:8080 \
    LINKBRIDGE_DB=/data/linkbridge.db
EXPOSE 8080
VOLUME ["/data"]
# distroless has no shell or curl: the binary checks itself (GET /readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/linkbridge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/linkbridge"]
CMD ["serve"]
