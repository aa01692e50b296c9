"""py-consul (criteo/py-consul) against the dev agent: every call returns what Consul documents."""

import threading
import time

import consul
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store
import datetime


@pytest.fixture(scope="module")
def c(agent):
    return consul.Consul(host=agent.host, port=agent.port)


def certs(pem):
    """Every certificate in a PEM bundle, each with every extension parsed (strict DER)."""
    out = x509.load_pem_x509_certificates(pem.encode())
    for cert in out:
        for ext in cert.extensions:
            assert ext.value is not None
    return out


def test_registration_with_lowercase_keys_and_connect_native(c):
    assert c.agent.service.register(
        "web", service_id="web-1", port=8443, tags=["v1", "blue"], meta={"version": "1"},
        connect={"native": True}, check=consul.Check.ttl("30s"), enable_tag_override=True,
        weights={"Passing": 3, "Warning": 1},
    )
    svc = c.agent.services()["web-1"]
    assert svc["Service"] == "web" and svc["Port"] == 8443
    assert svc["Connect"] == {"Native": True}
    assert svc["Tags"] == ["v1", "blue"] and svc["Meta"] == {"version": "1"}
    assert svc["EnableTagOverride"] is True and svc["Weights"] == {"Passing": 3, "Warning": 1}
    assert svc["Datacenter"] == "dc1"
    one = c.agent.service_definition("web-1")
    assert one["ID"] == "web-1" and one["ContentHash"]


def test_ttl_checks_drive_health_and_check_listing(c):
    checks = c.agent.checks()
    assert checks["service:web-1"]["Status"] == "critical"
    assert checks["service:web-1"]["Type"] == "ttl"
    assert checks["service:web-1"]["ServiceTags"] == ["v1", "blue"]
    assert c.agent.check.ttl_pass("service:web-1", notes="all good")
    _, entries = c.health.service("web", passing=True)
    assert [e["Service"]["ID"] for e in entries] == ["web-1"]
    assert c.agent.check.ttl_warn("service:web-1")
    _, entries = c.health.service("web", passing=True)
    assert entries == []
    assert c.agent.check.ttl_pass("service:web-1")
    assert c.agent.check.register("disk", check=consul.Check.ttl("1m"), check_id="disk", notes="node check")
    assert c.agent.checks()["disk"]["ServiceID"] == ""
    assert c.agent.check.ttl_pass("disk")
    assert c.agent.check.deregister("disk")
    assert "disk" not in c.agent.checks()


def test_health_connect_with_tag_filters_and_blocking(c):
    index, entries = c.health.connect("web", tag="blue")
    assert [e["Service"]["ID"] for e in entries] == ["web-1"]
    e = entries[0]
    assert e["Node"]["Node"] == "node-a" and e["Node"]["Datacenter"] == "dc1"
    assert e["Service"]["Weights"] == {"Passing": 3, "Warning": 1}
    assert {"CreateIndex", "ModifyIndex", "TaggedAddresses", "Meta"} <= set(e["Node"])
    assert all({"Type", "Notes", "ServiceTags"} <= set(ch) for ch in e["Checks"])
    assert c.health.connect("web", tag=["blue", "red"])[1] == []
    assert c.health.connect("web", filter_expr='Service.Meta.version == "1"')[1] != []
    assert c.health.connect("web", filter_expr='"red" in Service.Tags')[1] == []
    assert c.health.connect("web", node_meta={"consul-network-segment": ""})[1] != []
    assert c.health.connect("web", near="_agent")[1] != []
    with pytest.raises(consul.ConsulException, match="Failed to create boolean expression evaluator"):
        c.health.connect("web", filter_expr="Service.Nope == 1")

    def fail_later():
        time.sleep(0.3)
        c.agent.check.ttl_fail("service:web-1", notes="down")

    t = threading.Thread(target=fail_later)
    t.start()
    start = time.monotonic()
    new_index, entries = c.health.connect("web", index=index, wait="10s", passing=True)
    t.join()
    assert time.monotonic() - start < 5
    assert int(new_index) > int(index) and entries == []
    c.agent.check.ttl_pass("service:web-1")


def test_catalog_queries(c):
    _, services = c.catalog.services()
    assert services["web"] == ["v1", "blue"]
    _, nodes = c.catalog.service("web", tag="v1")
    assert nodes[0]["ServiceID"] == "web-1" and nodes[0]["ServiceConnect"] == {"Native": True}
    assert nodes[0]["Node"] == "node-a" and nodes[0]["ServiceWeights"] == {"Passing": 3, "Warning": 1}
    assert c.catalog.connect("web")[1][0]["ServicePort"] == 8443
    assert c.catalog.datacenters() == ["dc1"]
    assert [n["Node"] for n in c.catalog.nodes()[1]] == ["node-a"]
    assert c.status.leader() == "127.0.0.1:8300"
    assert c.status.peers() == ["127.0.0.1:8300"]
    members = c.agent.members()
    assert members[0]["Name"] == "node-a" and members[0]["Status"] == 1
    me = c.agent.self()
    assert me["Config"]["NodeName"] == "node-a" and me["Config"]["Server"] is True
    assert me["Member"]["Name"] == "node-a"


def test_intentions_upsert_check_match(c):
    assert c.connect.intentions.upsert("web", "db", action="allow", description="web to db")
    assert c.connect.intentions.upsert("*", "db", action="deny")
    assert c.connect.intentions.check("web", "db") is True
    assert c.connect.intentions.check("api", "db") is False
    got = c.connect.intentions.read("web", "db")
    assert got["Action"] == "allow" and got["Precedence"] == 9 and got["Description"] == "web to db"
    match = c.connect.intentions.match("destination", "db")
    assert [(i["SourceName"], i["Precedence"]) for i in match["db"]] == [("web", 9), ("*", 8)]
    listed = c.connect.intentions.list()
    assert [i["SourceName"] for i in listed] == ["web", "*"]
    assert c.connect.intentions.delete("*", "db")


def test_ca_roots_leaf_and_strict_der(c):
    roots = c.agent.connect.ca.roots()
    active = [r for r in roots["Roots"] if r["Active"]][0]
    root = certs(active["RootCert"])[0]
    leaf_json = c.agent.connect.ca.leaf("web")
    chain = certs(leaf_json["CertPEM"])
    leaf = chain[0]
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == [leaf_json["ServiceURI"]]
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and ku.data_encipherment and ku.key_agreement
    verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
    verifier.verify(leaf, chain[1:])
    serialization.load_pem_private_key(leaf_json["PrivateKeyPEM"].encode(), None)
    assert c.connect.ca.configuration()["Provider"] == "consul"


def test_ca_configuration_with_a_user_supplied_root(c):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test User CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    root = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    root_pem = root.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    assert c.connect.ca.update_configuration("consul", {"PrivateKey": key_pem, "RootCert": root_pem, "LeafCertTTL": "1h"})
    roots = c.agent.connect.ca.roots()
    active = [r for r in roots["Roots"] if r["Active"]][0]
    assert active["RootCert"].strip() == root_pem.strip()
    leaf_json = c.agent.connect.ca.leaf("web")
    chain = certs(leaf_json["CertPEM"])
    verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
    verifier.verify(chain[0], chain[1:])
    lifetime = chain[0].not_valid_after_utc - chain[0].not_valid_before_utc
    assert lifetime <= datetime.timedelta(hours=1)
    with pytest.raises(consul.ConsulException, match="400"):
        c.connect.ca.update_configuration("consul", {"RootCert": root_pem})


def test_maintenance_and_deregister(c):
    assert c.agent.service.maintenance("web-1", True, reason="upgrade")
    maint = c.agent.checks()["_service_maintenance:web-1"]
    assert maint["Status"] == "critical" and maint["Notes"] == "upgrade" and maint["Type"] == "maintenance"
    assert c.health.service("web", passing=True)[1] == []
    assert c.agent.service.maintenance("web-1", False)
    assert c.agent.service.deregister("web-1")
    assert c.agent.services() == {}
    assert c.health.connect("web")[1] == []


def test_wrong_types_and_unknown_fields_get_consuls_400(agent):
    import requests

    base = f"http://{agent.host}:{agent.port}/v1/agent/service/register"
    r = requests.put(base, data='{"name": "x", "port": "80"}')
    assert (r.status_code, r.text) == (400, "Request decode failed: json: cannot unmarshal string into Go struct field .Port of type int")
    r = requests.put(base, data='{"name": "x", "bogus": 1}')
    assert (r.status_code, r.text) == (400, 'Request decode failed: json: unknown field "bogus"')
    r = requests.get(f"http://{agent.host}:{agent.port}/v1/health/service/x?peer=other")
    assert r.status_code == 400 and "peer" in r.text
