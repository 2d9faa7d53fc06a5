"""TLS credentials for gRPC servers and channels, read from PEM files."""

from __future__ import annotations

from pathlib import Path

import grpc


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def server_credentials(
    *,
    cert_file: Path,
    key_file: Path,
    client_ca_file: Path | None = None,
    require_client_cert: bool = False,
) -> grpc.ServerCredentials:
    """A server's TLS: its certificate chain and key, and the CA its clients' certificates need.

    Args:
        cert_file: The server's certificate chain (PEM).
        key_file: Its private key (PEM).
        client_ca_file: The CA bundle client certificates must chain to; without it no
            client certificate is asked for.
        require_client_cert: Refuse connections without a valid client certificate (mTLS
            only); otherwise a client may also prove itself with a bearer token.
    """
    return grpc.ssl_server_credentials(
        [(key_file.read_bytes(), cert_file.read_bytes())],
        root_certificates=_read(client_ca_file),
        require_client_auth=require_client_cert,
    )


def channel_credentials(
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> grpc.ChannelCredentials:
    """A client's TLS: the CA the server's certificate must chain to, and its own for mTLS.

    Args:
        ca_file: The CA bundle (PEM); None trusts the system's roots.
        cert_file: The client's certificate chain, for servers that ask for one.
        key_file: Its private key.
    """
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file),
        private_key=_read(key_file),
        certificate_chain=_read(cert_file),
    )
