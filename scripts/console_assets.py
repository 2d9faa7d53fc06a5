"""Copy the console's and GraphiQL's browser assets from pinned npm packages (no CDN, no build).

Usage: python scripts/console_assets.py [--check]
`make console-assets` fetches each package with `npm pack`, checks the registry's integrity
hash against the pin below, and copies the listed files (and every licence) into
gateway/console/static/vendor with a MANIFEST.json of their SHA-256. `--check` (in `make test`)
needs no network: it fails when a vendored file differs from the manifest or the manifest from
the pins, so an edited or stale asset never reaches main.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "gateway" / "console" / "static" / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    # The registry's `dist.integrity`: the tarball is refused unless it matches.
    integrity: str
    # Path inside the package -> file name under vendor/.
    files: dict[str, str]


PACKAGES = (
    # Preact and htm in one ES module: no import map (an inline script CSP would refuse).
    Package(
        "htm",
        "3.1.1",
        "sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ==",
        {"preact/standalone.module.js": "htm-preact.module.js", "LICENSE": "htm.LICENSE"},
    ),
    # The standalone module above bundles Preact: its licence travels with it.
    Package(
        "preact",
        "10.25.4",
        "sha512-jLdZDb+Q+odkHJ+MpW/9U5cODzqnB+fy2EiHSZES7ldV5LK7yjlVzTp7R8Xy6W6y75kfK8iWYtFVH7lvjwrCMA==",
        {"LICENSE": "preact.LICENSE"},
    ),
    # GraphiQL's page: the versions Strawberry's own page loads from a CDN.
    Package(
        "react",
        "18.2.0",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        {"umd/react.production.min.js": "react.production.min.js", "LICENSE": "react.LICENSE"},
    ),
    Package(
        "react-dom",
        "18.2.0",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        {
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "react-dom.LICENSE",
        },
    ),
    Package(
        "graphiql",
        "3.8.3",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "graphiql.LICENSE",
        },
    ),
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pins() -> dict[str, str]:
    return {f"{p.name}@{p.version}": p.integrity for p in PACKAGES}


def _fetch(package: Package, into: Path) -> Path:
    """``npm pack`` one pinned package into ``into``; its integrity must match the pin."""
    spec = f"{package.name}@{package.version}"
    out = subprocess.run(
        # npm from PATH, as the developer running `make console-assets` has it.
        ["npm", "pack", "--json", "--pack-destination", str(into), spec],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    [packed] = json.loads(out.stdout)
    tarball = into / packed["filename"]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != package.integrity:
        raise SystemExit(f"{spec}: the tarball does not match the pinned integrity")
    return tarball


def update() -> None:
    """Re-copy every vendored file from the pinned packages and rewrite the manifest."""
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to fetch the console's assets (apt-get install npm)")
    shutil.rmtree(VENDOR, ignore_errors=True)
    VENDOR.mkdir(parents=True)
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as temp:
        for package in PACKAGES:
            with tarfile.open(_fetch(package, Path(temp))) as tar:
                for inside, name in package.files.items():
                    member = tar.extractfile(f"package/{inside}")
                    if member is None:
                        raise SystemExit(f"{package.name}: no file {inside}")
                    (VENDOR / name).write_bytes(member.read())
                    files[name] = _sha256(VENDOR / name)
    manifest = {"packages": _pins(), "files": dict(sorted(files.items()))}
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def problems() -> list[str]:
    """What differs between the vendored files, the manifest and the pins; empty: none."""
    if not MANIFEST.exists():
        return [f"{MANIFEST} is missing: run make console-assets"]
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    found: list[str] = []
    if manifest["packages"] != _pins():
        found.append("the pins changed since the assets were copied: run make console-assets")
    expected = {name for p in PACKAGES for name in p.files.values()}
    if set(manifest["files"]) != expected:
        found.append("the manifest lists other files than the pins: run make console-assets")
    present = {p.name for p in VENDOR.iterdir()} - {MANIFEST.name}
    found += [f"{name}: not from a pinned package" for name in sorted(present - expected)]
    for name, digest in sorted(manifest["files"].items()):
        path = VENDOR / name
        if not path.exists() or _sha256(path) != digest:
            found.append(f"{name}: missing or edited (run make console-assets)")
    return found


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        found = problems()
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    update()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
