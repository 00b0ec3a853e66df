# Hemicycle as a static binary in an empty image.
#   docker build -t hemicycle .
# The build needs the Go module proxy (or a vendor folder); the image needs nothing at all.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that runs in an image without libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/hemicycle ./cmd/hemicycle
# The single-node journal's folder, owned by the unprivileged user the image runs as.
RUN mkdir -p /out/data

FROM scratch
COPY --from=build /out/hemicycle /hemicycle
COPY configs /configs
COPY --from=build --chown=65534:65534 /out/data /data
ENV HEMICYCLE_DATA_DIR=/data
VOLUME /data
# HTTP/WebSocket, ICE over TCP, and the one UDP port for media.
EXPOSE 7880/tcp 7881/tcp 7882/udp
USER 65534:65534
ENTRYPOINT ["/hemicycle"]
CMD ["serve", "--config", "/configs/hemicycle.yaml"]
