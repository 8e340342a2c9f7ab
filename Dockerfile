# syntax=docker/dockerfile:1
# Build: a static binary (CGO off, trimmed paths, version stamped).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/panther-scim ./cmd/panther-scim

# Run: distroless static, non-root, data on a volume.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/panther-scim /usr/local/bin/panther-scim
USER 65532:65532
VOLUME ["/data"]
ENV PANTHER_SCIM_STORE_PATH=/data/panther-scim.db \
    PANTHER_SCIM_SERVER_ADDR=0.0.0.0:8080 \
    PANTHER_SCIM_HEALTH_URL=http://127.0.0.1:8080/healthz
EXPOSE 8080
# With server.tls set, probe HTTPS: PANTHER_SCIM_HEALTH_URL=https://127.0.0.1:8080/healthz
# (the certificate is not checked on loopback, as it names the public host).
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/usr/local/bin/panther-scim", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/panther-scim"]
CMD ["serve", "--config", "/etc/panther-scim/config.yaml"]
