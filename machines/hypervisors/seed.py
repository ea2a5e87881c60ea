"""cloud-init NoCloud seeds: the ISO a freshly imaged machine configures
itself from on first boot.

cloud-init finds the seed by its volume label `cidata` and reads the files
`user-data` and `meta-data` from it.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pycdlib
from passlib.hash import sha512_crypt

from machines.hypervisors.base import SeedSpec

VOLUME_LABEL = "cidata"
FIRSTBOOT_PATH = "/var/lib/corral/firstboot"

# ISO 9660 level 1 names are 8.3 upper case; Rock Ridge and Joliet carry the
# real names that Linux shows.
_FILES = {"user-data": "/USERDATA.;1", "meta-data": "/METADATA.;1"}


def hash_password(password: str) -> str:
    """A crypt(3) SHA-512 hash, so the seed never carries the password."""
    return sha512_crypt.hash(password)


def user_data(seed: SeedSpec) -> str:
    """`#cloud-config` user-data.

    JSON is valid YAML, so writing JSON avoids a YAML dependency and every
    quoting pitfall of hand-written YAML.
    """
    config: dict[str, Any] = {
        "hostname": seed.hostname.split(".", 1)[0],
        "fqdn": seed.hostname,
        # Keys and the password are for root, as BigV did.
        "disable_root": False,
        "ssh_pwauth": True,
        "chpasswd": {
            "expire": False,
            "users": [
                {
                    "name": "root",
                    "password": seed.root_password_hash
                    or hash_password(seed.root_password),
                    "type": "hash",
                }
            ],
        },
    }
    if seed.ssh_keys:
        config["ssh_authorized_keys"] = list(seed.ssh_keys)
    if seed.firstboot_script:
        config.update(_firstboot(seed.firstboot_script))

    return "#cloud-config\n" + json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def _firstboot(script: str) -> dict[str, Any]:
    # A script without an interpreter line would fail to exec, so hand it to sh.
    command = (
        [FIRSTBOOT_PATH] if script.startswith("#!") else ["/bin/sh", FIRSTBOOT_PATH]
    )
    return {
        "write_files": [
            {"path": FIRSTBOOT_PATH, "permissions": "0700", "content": script}
        ],
        "runcmd": [command],
    }


def meta_data(seed: SeedSpec) -> str:
    # A new instance-id is what makes cloud-init run again after a reimage.
    return (
        json.dumps(
            {"instance-id": seed.instance_id, "local-hostname": seed.hostname}, indent=2
        )
        + "\n"
    )


def build_seed_iso(seed: SeedSpec) -> bytes:
    """The seed as ISO 9660 bytes with Joliet and Rock Ridge names."""
    contents = {
        "user-data": user_data(seed).encode(),
        "meta-data": meta_data(seed).encode(),
    }

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=VOLUME_LABEL, joliet=3, rock_ridge="1.09")
    for name, data in contents.items():
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            _FILES[name],
            rr_name=name,
            joliet_path=f"/{name}",
        )

    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def read_seed_file(iso_bytes: bytes, name: str) -> str:
    """Read one file back from a seed ISO by its Joliet name."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(iso_bytes))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, joliet_path=f"/{name}")
        return out.getvalue().decode()
    finally:
        iso.close()
