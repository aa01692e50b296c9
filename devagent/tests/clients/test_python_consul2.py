"""python-consul2 against the dev agent, for the calls it offers."""

import pytest

from conftest import python_consul2


@pytest.fixture(scope="module")
def c(agent):
    mod = python_consul2()
    return mod, mod.Consul(host=agent.host, port=agent.port)


def test_register_health_and_deregister(c):
    mod, c = c
    assert c.agent.service.register("api", service_id="api-1", port=9000, tags=["x"], check=mod.Check.ttl("10s"))
    assert c.agent.services()["api-1"]["Port"] == 9000
    assert c.agent.check.ttl_pass("service:api-1")
    _, entries = c.health.service("api", passing=True, tag="x")
    assert [e["Service"]["ID"] for e in entries] == ["api-1"]
    _, checks = c.health.checks("api")
    assert checks[0]["Status"] == "passing"
    _, passing = c.health.state("passing")
    assert {ch["CheckID"] for ch in passing} >= {"serfHealth", "service:api-1"}
    _, services = c.catalog.services()
    assert services == {"api": ["x"]}
    assert c.catalog.service("api")[1][0]["ServicePort"] == 9000
    assert c.agent.service.deregister("api-1")
    assert c.agent.services() == {}


def test_legacy_intentions_and_match(c):
    _, c = c
    ixn_id = c.connect.intentions.create("web", "db", "consul", "allow")["ID"]
    assert isinstance(ixn_id, str) and len(ixn_id) == 36
    assert c.connect.intentions.get(ixn_id)["Action"] == "allow"
    assert c.connect.intentions.check("web", "db")["Allowed"] is True
    assert [i["SourceName"] for i in c.connect.intentions.list_match("destination", "db")["db"]] == ["web"]
    c.connect.intentions.delete(ixn_id)
    assert c.connect.intentions.list() == []


def test_roots_and_status(c):
    _, c = c
    roots = c.connect.certificates.list()
    assert roots["ActiveRootID"] and len(roots["Roots"]) >= 1
    assert c.status.leader() == "127.0.0.1:8300"
