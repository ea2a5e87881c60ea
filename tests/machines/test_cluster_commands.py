"""The cluster admins' commands: bootstrap_cluster and register_*."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from machines.cluster import write_blank_qcow2
from machines.hypervisors.base import driver_for_uri
from machines.models import (
    Distribution,
    Head,
    IpRange,
    StorageGrade,
    StoragePool,
    Tail,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var(tmp_path, settings):
    settings.CORRAL_IMAGE_DIR = tmp_path / "images"
    settings.CORRAL_SIMULATED_DIR = tmp_path / "heads"


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _cluster():
    return {
        "heads": list(Head.objects.values_list("label", "uri")),
        "tails": list(Tail.objects.values_list("label", flat=True)),
        "pools": list(StoragePool.objects.values_list("label", "grade", "backup")),
        "ranges": list(IpRange.objects.values_list("vlan__num", "spec")),
    }


# bootstrap_cluster


def test_bootstrap_sets_up_a_simulated_cluster(tmp_path):
    _call("bootstrap_cluster")

    head = Head.objects.get()
    grades = set(StorageGrade.objects.values_list("name", flat=True))
    pools = StoragePool.objects.all()
    assert head.uri.startswith(f"simulated://simulated{tmp_path / 'heads'}")
    assert driver_for_uri(head.uri).state("0" * 32) == "absent"
    assert {p.grade for p in pools if not p.backup} == grades
    assert pools.filter(backup=True).count() == 1
    assert {p.tail.label for p in pools} == {"tail1"}
    assert _cluster()["ranges"] == [(1, "10.10.0.0/24"), (1, "fd00:10::/64")]
    images = {p.name for p in (tmp_path / "images").iterdir()}
    assert "bookworm.qcow2" in images and "none.qcow2" not in images


def test_bootstrap_is_idempotent():
    _call("bootstrap_cluster")
    before = _cluster()

    out = _call("bootstrap_cluster")

    assert _cluster() == before
    assert out.strip() == "The cluster is set up already."


def test_bootstrap_adds_no_simulated_head_or_placeholder_images_to_a_real_cluster(
    tmp_path,
):
    _call("register_head", "kvm1", "qemu+ssh://root@kvm1/system")

    _call("bootstrap_cluster")

    assert list(Head.objects.values_list("label", flat=True)) == ["kvm1"]
    assert not (tmp_path / "images").exists() or not any(
        (tmp_path / "images").iterdir()
    )


def test_bootstrap_keeps_registered_images(tmp_path):
    image = tmp_path / "real.qcow2"
    write_blank_qcow2(image, size_mib=2)
    _call("register_image", "bookworm", str(image))

    _call("bootstrap_cluster")

    assert (tmp_path / "images" / "bookworm.qcow2").read_bytes() == image.read_bytes()


# register_head


def test_register_head_creates_then_updates_a_head():
    out = _call("register_head", "kvm1", "qemu:///system", "--memory", "32768")
    assert "Registered head kvm1" in out
    assert "celery -A panel worker -Q head.kvm1" in out

    _call("register_head", "kvm1", "qemu+ssh://kvm1/system", "--zone", "york")

    head = Head.objects.get()
    assert (head.uri, head.zone, head.total_memory) == (
        "qemu+ssh://kvm1/system",
        "york",
        32768,
    )


@pytest.mark.parametrize(
    ("label", "uri", "message"),
    [
        ("Bad_Label", "qemu:///system", "label"),
        ("kvm1", "not-a-uri", "not a libvirt or simulated URI"),
    ],
)
def test_register_head_refuses_bad_input(label, uri, message):
    with pytest.raises(CommandError, match=message):
        _call("register_head", label, uri)

    assert not Head.objects.exists()


# register_tail and register_pool


def test_register_pool_puts_a_pool_of_a_grade_on_a_tail():
    _call("register_tail", "tail9", "--zone", "york")
    _call("register_tail", "tail9", "--zone", "york")

    _call("register_pool", "fast", "--tail", "tail9", "--grade", "ssd", "--size", "500")
    _call("register_pool", "fast", "--tail", "tail9", "--grade", "ssd", "--size", "900")

    pool = StoragePool.objects.get()
    assert (pool.grade, pool.size, pool.libvirt_pool, pool.zone) == (
        "ssd",
        900,
        "fast",
        "york",
    )
    assert Tail.objects.count() == 1


def test_register_pool_makes_backup_pools_of_grade_iceberg():
    _call("register_tail", "tail9")

    _call("register_pool", "cold", "--tail", "tail9", "--backup", "--size", "9000")

    pool = StoragePool.objects.get()
    assert (pool.grade, pool.backup) == ("iceberg", True)


@pytest.mark.parametrize(
    ("tail", "grade", "message"),
    [("nowhere", "sata", "no tail 'nowhere'"), ("tail9", "gold", "no storage grade")],
)
def test_register_pool_refuses_unknown_tails_and_grades(tail, grade, message):
    _call("register_tail", "tail9")

    with pytest.raises(CommandError, match=message):
        _call("register_pool", "p", "--tail", tail, "--grade", grade, "--size", "1")

    assert not StoragePool.objects.exists()


# register_image


def test_register_image_stores_a_base_image_for_a_distribution(tmp_path):
    image = tmp_path / "upload.qcow2"
    write_blank_qcow2(image, size_mib=3)

    _call("register_image", "rocky9", str(image), "--description", "Rocky Linux 9")
    _call("register_image", "rocky9", str(image))

    row = Distribution.objects.get(name="rocky9")
    stored = tmp_path / "images" / "rocky9.qcow2"
    assert (row.image, row.description) == ("rocky9.qcow2", "Rocky Linux 9")
    assert stored.read_bytes() == image.read_bytes()


def test_register_image_refuses_files_that_are_not_qcow2(tmp_path):
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\0" * 1024)

    with pytest.raises(CommandError, match="is not a qcow2 image"):
        _call("register_image", "rocky9", str(image))

    assert not Distribution.objects.filter(name="rocky9").exists()
