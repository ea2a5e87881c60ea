import io
import json

import pycdlib
from passlib.hash import sha512_crypt

from machines.hypervisors.base import SeedSpec
from machines.hypervisors.seed import FIRSTBOOT_PATH, build_seed_iso, read_seed_file

PASSWORD = "correct horse battery staple"


def _seed(**changes):
    values = {
        "instance_id": "vm-1-reimage-3",
        "hostname": "web.default.acme.corral.test",
        "root_password": PASSWORD,
        "ssh_keys": ("ssh-ed25519 AAAAC3 me@laptop",),
        "firstboot_script": "#!/bin/sh\necho hi > /root/hi\n",
    }
    return SeedSpec(**(values | changes))


def _cloud_config(iso):
    text = read_seed_file(iso, "user-data")
    header, _, body = text.partition("\n")
    assert header == "#cloud-config"
    return json.loads(body)


def test_it_labels_the_iso_cidata_with_both_files():
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(build_seed_iso(_seed())))

    labels = {
        iso.pvd.volume_identifier.decode().strip(),
        iso.joliet_vd.volume_identifier.decode("utf-16-be").strip(),
    }
    names = {
        child.file_identifier().decode("utf-16-be")
        for child in iso.list_children(joliet_path="/")
        if child.is_file()
    }
    rock_ridge = {
        child.rock_ridge.name().decode()
        for child in iso.list_children(rr_path="/")
        if child.is_file()
    }
    iso.close()

    assert labels == {"cidata"}
    assert names == {"user-data", "meta-data"} == rock_ridge


def test_it_carries_only_a_sha512_hash_of_the_password():
    iso = build_seed_iso(_seed())
    users = _cloud_config(iso)["chpasswd"]["users"]

    assert PASSWORD.encode() not in iso
    assert users[0]["name"] == "root"
    assert users[0]["type"] == "hash"
    assert users[0]["password"].startswith("$6$")
    assert sha512_crypt.verify(PASSWORD, users[0]["password"])


def test_it_carries_keys_hostname_and_firstboot_script():
    config = _cloud_config(build_seed_iso(_seed()))

    assert config["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3 me@laptop"]
    assert config["hostname"] == "web"
    assert config["fqdn"] == "web.default.acme.corral.test"
    assert config["disable_root"] is False
    assert config["write_files"][0]["path"] == FIRSTBOOT_PATH
    assert config["write_files"][0]["content"].startswith("#!/bin/sh")
    assert config["runcmd"] == [[FIRSTBOOT_PATH]]


def test_it_runs_a_script_without_interpreter_line_with_sh():
    config = _cloud_config(build_seed_iso(_seed(firstboot_script="touch /x")))

    assert config["runcmd"] == [["/bin/sh", FIRSTBOOT_PATH]]


def test_it_leaves_out_empty_keys_and_script():
    config = _cloud_config(build_seed_iso(_seed(ssh_keys=(), firstboot_script="")))

    assert "ssh_authorized_keys" not in config
    assert "runcmd" not in config


def test_it_writes_instance_id_into_meta_data():
    meta = json.loads(read_seed_file(build_seed_iso(_seed()), "meta-data"))

    assert meta == {
        "instance-id": "vm-1-reimage-3",
        "local-hostname": "web.default.acme.corral.test",
    }
