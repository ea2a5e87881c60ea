import base64
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from tests.factories import PASSWORD, make_account, make_infrastructure, make_user


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"

    # Fails (SchemaGenerationError) on any warning: an endpoint without its
    # request or response body, an unknown authenticator, a clashing id.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert out.read_text().startswith("openapi: 3")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_every_endpoint_has_its_bodies_and_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert any(code.startswith("2") for code in responses), where
            # Taking a backup is the one write without a body.
            if method in {"post", "put"} and not path.endswith("/backups"):
                assert "requestBody" in operation, where
            for code, response in responses.items():
                if code != "204":
                    assert "content" in response, f"{where} {code}"


def test_the_errors_are_flat(schema):
    grant = schema["paths"]["/users/{user}/privileges"]["post"]["responses"]
    body = grant["400"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/FieldErrors"}
    field_errors = schema["components"]["schemas"]["FieldErrors"]
    assert field_errors["additionalProperties"]["items"] == {"type": "string"}
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"] == {"detail": {"type": "string"}}


def test_it_describes_the_security_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["basicAuth"]["scheme"] == "basic"
    assert schemes["sessionToken"]["scheme"] == "bearer"
    assert "apikey." in schemes["apiKey"]["description"]
    accounts = schema["paths"]["/accounts"]["get"]
    assert {"sessionToken": []} in accounts["security"]
    assert {"$ref": "#/components/parameters/XYubikeyOtp"} in accounts["parameters"]


def test_session_and_definitions_need_no_credentials(schema):
    session = schema["paths"]["/session"]["post"]
    assert session["security"] == []
    assert "text/plain" in session["responses"]["200"]["content"]
    definitions = schema["paths"]["/definitions"]["get"]
    assert not definitions.get("security")


@pytest.mark.django_db
def test_the_viewer_serves_its_assets_locally():
    response = Client().get("/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/openapi.json" in page
    assert "//cdn" not in page and "unpkg" not in page
    bundle = "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert f"/static/{bundle}" in page
    assert finders.find(bundle) is not None


# A generated client ---------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory, schema):
    """A Python client generated from the schema by openapi-python-client."""
    root = tmp_path_factory.mktemp("client")
    (root / "schema.json").write_text(json.dumps(schema))
    # No post hooks: they would run formatters the test does not need.
    (root / "config.yaml").write_text("post_hooks: []\n")
    generator = Path(sys.executable).parent / "openapi-python-client"
    subprocess.run(  # noqa: S603 - fixed arguments, our own files
        [
            str(generator),
            "generate",
            "--path",
            str(root / "schema.json"),
            "--config",
            str(root / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(root / "corral_client"),
            "--fail-on-warning",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("corral_client")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("corral_client")]:
            del sys.modules[name]


def test_a_generated_client_signs_up_lists_accounts_and_gets_definitions(
    generated, live_server
):
    from corral_client.api.accounts import accounts_list
    from corral_client.api.definitions import definitions_list
    from corral_client.api.session import session_create
    from corral_client.api.users import users_create
    from corral_client.models import (
        AccountsListView,
        SessionCreateBody,
        SignupRequest,
    )

    anonymous = generated.Client(base_url=live_server.url)
    by_basic = generated.AuthenticatedClient(
        base_url=live_server.url,
        prefix="Basic",
        token=base64.b64encode(f"gina:{PASSWORD}".encode()).decode(),
    )

    # Closing the clients ends their keep-alive connections, so the live
    # server's threads let go of the test database.
    with anonymous, by_basic:
        created = users_create.sync_detailed(
            client=anonymous,
            body=SignupRequest(
                username="gina",
                email="gina@example.org",
                password=PASSWORD,
                account_name="ginas",
            ),
        )
        token = session_create.sync(
            client=anonymous,
            body=SessionCreateBody(username="gina", password=PASSWORD),
        )
        with generated.AuthenticatedClient(
            base_url=live_server.url, token=token
        ) as by_token:
            listed = accounts_list.sync(client=by_token)
        overview = accounts_list.sync(client=by_basic, view=AccountsListView.OVERVIEW)
        definitions = definitions_list.sync(client=anonymous)

    assert created.status_code == 201
    assert created.parsed.username == "gina"
    assert [a.name for a in listed] == ["ginas"]
    assert overview[0].groups[0].name == "default"
    assert {d.id for d in definitions} >= {"distributions", "storage_grades"}


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_creates_a_machine_and_reads_it_back(generated, live_server):
    from corral_client.api.accounts import (
        accounts_groups_virtual_machines_retrieve as vm_retrieve,
    )
    from corral_client.api.accounts import vm_create
    from corral_client.models import (
        DiscSpecRequest,
        VirtualMachineSpecRequest,
        VmCreateErrors,
        VmCreateRequest,
    )

    infra = make_infrastructure()
    make_account("hals", owner=make_user("hal"))
    where = {"account": "hals", "group": "default"}

    def machine(name: str, disc_grade: str) -> VmCreateRequest:
        return VmCreateRequest(
            virtual_machine=VirtualMachineSpecRequest(name=name, cores=2),
            discs=[DiscSpecRequest(size=25600, storage_grade=disc_grade)],
        )

    with generated.AuthenticatedClient(
        base_url=live_server.url,
        prefix="Basic",
        token=base64.b64encode(f"hal:{PASSWORD}".encode()).decode(),
    ) as client:
        created = vm_create.sync_detailed(
            **where, client=client, body=machine("web", "ssd")
        )
        refused = vm_create.sync_detailed(
            **where, client=client, body=machine("Web!", "gold")
        )
        read = vm_retrieve.sync(**where, vm="web", client=client)

    assert created.status_code == 202
    assert created.parsed.operation.kind == "create"
    assert refused.status_code == 400
    assert isinstance(refused.parsed, VmCreateErrors)
    assert refused.parsed["name"]  # the machine's errors stay at top level
    [message] = refused.parsed.discs[0]["storage_grade"]
    assert message.startswith("is not included in the list")
    assert read.id == created.parsed.id
    assert read.cores == 2
    assert [d.storage_pool for d in read.discs] == [infra.pools["ssd"].label]


@pytest.mark.django_db
def test_browsers_get_the_browsable_api():
    response = Client().get("/definitions", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "storage_grades" in response.content.decode()
