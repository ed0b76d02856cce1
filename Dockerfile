# One image for every Vectron role: `vectron pd|worker|gateway|auth|dev`.
# Build: docker build -t vectron .
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p vectron --bin vectron \
 && install -D target/release/vectron /out/vectron

# Small runtime with glibc and libstdc++ (RocksDB is C++), running as the
# distroless nonroot user (65532), which the operator's pods expect.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vectron /usr/local/bin/vectron
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/vectron"]
