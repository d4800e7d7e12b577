"""Node addressing and pod-range flags of `k8py server`, `k8py agent` and `k8py controller-manager`."""

from __future__ import annotations

import argparse

from k8py.cli import agent, controller_manager, server


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_server_node_ip_becomes_its_nodes_internal_ip(tmp_path):
    args = parse(server, ["server", "--node-ip", "192.168.91.1", "--cluster-cidr", "10.50.0.0/16"])
    config = agent.agent_config(args, tmp_path, control_plane=True)
    assert config.node_ip == "192.168.91.1" and config.cluster_cidr == "10.50.0.0/16"
    # Without it the kubelet works the address out from the route to the API server.
    assert agent.agent_config(parse(server, ["server"]), tmp_path).node_ip == ""


def test_controller_manager_allocates_node_cidrs_only_when_asked(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    off = controller_manager._options(parse(controller_manager, ["controller-manager", "--kubeconfig",
                                                                 str(kubeconfig)]))
    assert off["allocate_node_cidrs"] is False
    on = controller_manager._options(parse(controller_manager, [
        "controller-manager", "--kubeconfig", str(kubeconfig), "--allocate-node-cidrs",
        "--cluster-cidr", "10.50.0.0/16", "--node-cidr-mask-size", "26"]))
    assert (on["allocate_node_cidrs"], on["cluster_cidr"], on["node_cidr_mask_size"]) == (True, "10.50.0.0/16", 26)
