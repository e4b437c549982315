# Static, non-root image of the gateway.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/mcp-gateway .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcp-gateway /mcp-gateway
ENV PORT=8080 HOST=0.0.0.0
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/mcp-gateway"]
