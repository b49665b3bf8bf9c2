"""swarm role: the manager leads a swarm the worker joined; the worker carries its NPU ids and
labels; each node publishes its part; no join token reached a file on the control node; and a
service placed on the worker by its label publishes its port in host mode there (dnsrr, no
routing mesh: what cluster mode's students' servers use)."""

import json
import os
import pathlib
import subprocess
import time

import testinfra

PREFIX = os.environ.get("MLW_INSTANCE_PREFIX", "mlw")
testinfra_hosts = [f"ansible://{PREFIX}-manager"]


def test_two_nodes_the_manager_leads_the_worker_is_ready(host):
    out = host.check_output(
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'"
    )
    nodes = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert nodes == {"manager": ["Ready", "Active", "Leader"], "worker": ["Ready", "Active"]}, out


def test_the_worker_is_labelled_with_its_npus_and_labels(host):
    labels = json.loads(host.check_output("docker node inspect worker --format '{{json .Spec.Labels}}'"))
    # the images the worker has (what the hub checks before placing a server there)
    worker = testinfra.get_host(
        f"ansible://{PREFIX}-worker?ansible_inventory={host.backend.ansible_inventory}"
    )
    images = sorted(
        i
        for i in worker.check_output("docker image ls --format '{{.Repository}}:{{.Tag}}'").split()
        if "<none>" not in i
    )
    assert labels.pop("ml-workshop.images", "") == ",".join(images)
    assert labels == {"ml-workshop.npus": "0,1,2,3", "rack": "a"}
    assert json.loads(host.check_output("docker node inspect manager --format '{{json .Spec.Labels}}'")) == {}


def test_each_node_publishes_its_part():
    for name, role in (("manager", "manager"), ("worker", "worker")):
        h = host_of(name)
        f = h.file("/etc/ansible/facts.d/swarm.fact")
        assert f.mode == 0o644
        fact = json.loads(f.content_string)
        assert fact["role"] == role and fact["node"] == name and fact["manager_addr"].endswith(":2377")
        assert "SWMTKN" not in f.content_string


def host_of(name):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    return testinfra.get_host(f"ansible://{PREFIX}-{name}?ansible_inventory={inventory}")


def test_no_join_token_in_a_file_on_the_control_node():
    places = [pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]), pathlib.Path.home() / ".ansible"]
    p = subprocess.run(["grep", "-rl", "SWMTKN-", *map(str, places)], capture_output=True, text=True)
    assert p.stdout == "", f"a join token was written to {p.stdout}"


def test_a_service_placed_by_label_publishes_its_port_on_the_worker(host):
    # a label from swarm_node_labels (a constraint value cannot hold the commas of the NPU list:
    # the hub places by node.hostname, ml_workshop.swarm.service_extras)
    host.run("docker service rm mlw-probe")
    create = host.run(
        "docker service create --detach --name mlw-probe --constraint 'node.labels.rack==a'"
        " --no-resolve-image --endpoint-mode dnsrr --publish mode=host,target=8080,published=18080 --restart-condition none"
        " ml-workshop/busybox:latest httpd -f -p 8080 -h /etc"
    )
    assert create.rc == 0, create.stderr
    try:
        deadline = time.time() + 90
        state = ""
        while time.time() < deadline:
            state = host.check_output("docker service ps mlw-probe --format '{{.Node}} {{.CurrentState}}'")
            if state.startswith("worker Running"):
                break
            time.sleep(2)
        assert state.startswith("worker Running"), state
        # served on the worker's own address (host mode), not through a routing mesh
        worker_addr = host.check_output("docker node inspect worker --format '{{.Status.Addr}}'")
        r = host.run(f"curl -fsS -o /dev/null -w '%{{http_code}}' http://{worker_addr}:18080/passwd")
        assert r.stdout == "200", (r.stdout, r.stderr)
        assert (
            host.run("curl -fsS -m 5 -o /dev/null http://127.0.0.1:18080/passwd").rc != 0
        )  # not on the manager
    finally:
        host.run("docker service rm mlw-probe")
