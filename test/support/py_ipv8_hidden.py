"""Runs py-ipv8 exit nodes with hidden services and the DHT on loopback for the hidden-service interop tests.

Usage: py_ipv8_hidden.py <spec json>; PY_IPV8_DIR names a py-ipv8 checkout (pure Python, 241d0c2).
spec = {"hosts": ["127.0.0.x", ...], "walk_to": [[host, port]]}
     or {"nodes": [{"host": "127.0.0.x", "role": "exit" | "seeder" | "downloader", "exit": [host, port]}],
         "walk_to": ..., "info_hash": hex}
An exit node runs a HiddenTunnelCommunity (an exit: RELAY, EXIT_BT, EXIT_IPV8, SPEED_TEST) and a DHTDiscoveryCommunity
on one socket, the tunnel community announcing and looking up introduction points through a DHTCommunityProvider,
as Tribler wires them. A seeder (a relay, no exit) joins the hidden swarm of info_hash as a seeder with 1 hop and
keeps asking for an introduction point at its "exit"; a downloader builds one 1-hop circuit to its "exit" and joins
the swarm as a downloader.
Prints {"ready": [[host, port], ...]} once bound, then runs until stdin closes, printing
{"intro_point_for": n} whenever the number of seeders the exits are introduction points for changes,
{"intro": true} once a seeder's introduction circuit is ready, and {"linked": [host, port]} when a downloader's
end-to-end circuit is linked.
"""
import asyncio
import json
import logging
import os
import sys

sys.path.insert(0, os.environ["PY_IPV8_DIR"])
logging.disable(logging.CRITICAL)

from ipv8.community import CommunitySettings  # noqa: E402
from ipv8.dht.discovery import DHTDiscoveryCommunity  # noqa: E402
from ipv8.dht.provider import DHTCommunityProvider  # noqa: E402
from ipv8.keyvault.crypto import default_eccrypto  # noqa: E402
from ipv8.messaging.anonymization.hidden_services import HiddenTunnelCommunity, HiddenTunnelSettings  # noqa: E402
from ipv8.messaging.anonymization.tunnel import (  # noqa: E402
    CIRCUIT_STATE_READY,
    CIRCUIT_TYPE_IP_SEEDER,
    PEER_FLAG_EXIT_BT,
    PEER_FLAG_EXIT_IPV8,
    PEER_FLAG_RELAY,
    PEER_FLAG_SPEED_TEST,
)
from ipv8.messaging.interfaces.udp.endpoint import UDPEndpoint  # noqa: E402
from ipv8.peer import Peer  # noqa: E402
from ipv8.peerdiscovery.network import Network  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    spec = json.loads(sys.argv[1])
    nodes = spec.get("nodes") or [{"host": h, "role": "exit"} for h in spec["hosts"]]
    communities = []
    tunnels = []
    seeders = []
    downloaders = []
    for node in nodes:
        endpoint = UDPEndpoint(port=0, ip=node["host"])
        await endpoint.open()
        my_peer = Peer(default_eccrypto.generate_key("curve25519"))
        settings = HiddenTunnelSettings(my_peer=my_peer, endpoint=endpoint, network=Network(), max_circuits=4,
                                        remove_tunnel_delay=0)
        if node["role"] == "exit":
            dht = DHTDiscoveryCommunity(CommunitySettings(my_peer=my_peer, endpoint=endpoint, network=Network()))
            settings.dht_provider = DHTCommunityProvider(dht, 0)
            settings.peer_flags = {PEER_FLAG_RELAY, PEER_FLAG_SPEED_TEST, PEER_FLAG_EXIT_BT, PEER_FLAG_EXIT_IPV8}
            communities.append(dht)
        else:
            # the downloader relays nothing, so the seeder's rendezvous point is one of the test's other nodes
            relay = {PEER_FLAG_RELAY} if node["role"] == "seeder" else set()
            settings.peer_flags = relay | {PEER_FLAG_SPEED_TEST}
            settings.swarm_lookup_interval = 2
        tunnel = HiddenTunnelCommunity(settings)
        communities.append(tunnel)
        tunnels.append(tunnel)
        if node["role"] == "seeder":
            tunnel.join_swarm(bytes.fromhex(spec["info_hash"]), 1, seeding=True)
            seeders.append((tunnel, tuple(node["exit"])))
        elif node["role"] == "downloader":
            downloaders.append((tunnel, tuple(node["exit"])))
            tunnel.join_swarm(bytes.fromhex(spec["info_hash"]), 1,
                              callback=lambda address: emit({"linked": list(address)}), seeding=False)
    emit({"ready": [list(t.endpoint.get_address()) for t in tunnels]})

    targets = [tuple(a) for a in spec.get("walk_to", [])] + [t.endpoint.get_address() for t in tunnels]

    async def walk():
        reported = -1
        while True:
            for c in communities:
                for t in targets:
                    if t != c.endpoint.get_address():
                        c.walk_to(t)
            count = sum(len(t.intro_point_for) for t in tunnels)
            if count != reported:
                reported = count
                emit({"intro_point_for": count})
            await asyncio.sleep(0.5)

    async def introduce():
        while seeders or downloaders:
            for seeder, exit_address in list(seeders):
                ready = [c for c in seeder.circuits.values() if c.ctype == CIRCUIT_TYPE_IP_SEEDER
                         and c.state == CIRCUIT_STATE_READY]
                if ready:
                    emit({"intro": True})
                    seeders.remove((seeder, exit_address))
                    continue
                exit_peer = seeder.network.get_verified_by_address(exit_address)
                if exit_peer is not None and len(seeder.get_candidates(PEER_FLAG_RELAY)) > 1:
                    asyncio.ensure_future(seeder.create_introduction_point(bytes.fromhex(spec["info_hash"]),
                                                                           required_ip=exit_peer))
            for downloader, exit_address in list(downloaders):
                if downloader.find_circuits(hops=1):
                    downloaders.remove((downloader, exit_address))
                    continue
                exit_peer = downloader.network.get_verified_by_address(exit_address)
                if exit_peer is not None and not downloader.circuits:
                    downloader.create_circuit(1, required_exit=exit_peer)
            await asyncio.sleep(3)

    walker = asyncio.ensure_future(walk())
    introducer = asyncio.ensure_future(introduce())
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    walker.cancel()
    introducer.cancel()
    for c in communities:
        await c.unload()
    for t in tunnels:
        t.endpoint.close()


asyncio.run(main())
