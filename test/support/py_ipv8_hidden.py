"""Runs py-ipv8 exit nodes with hidden services and the DHT on loopback for the hidden-service interop tests.

Usage: py_ipv8_hidden.py <spec json>; PY_IPV8_DIR names a py-ipv8 checkout (pure Python, 241d0c2).
spec = {"hosts": ["127.0.0.x", ...], "walk_to": [[host, port]]}
Every node runs a HiddenTunnelCommunity (an exit: RELAY, EXIT_BT, EXIT_IPV8, SPEED_TEST) and a DHTDiscoveryCommunity
on one socket, the tunnel community announcing and looking up introduction points through a DHTCommunityProvider,
as Tribler wires them. Prints {"ready": [[host, port], ...]} once bound, then runs until stdin closes, printing
{"intro_point_for": n} whenever the number of seeders a node is an introduction point for changes.
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
    communities = []
    tunnels = []
    for host in spec["hosts"]:
        endpoint = UDPEndpoint(port=0, ip=host)
        await endpoint.open()
        my_peer = Peer(default_eccrypto.generate_key("curve25519"))
        dht = DHTDiscoveryCommunity(CommunitySettings(my_peer=my_peer, endpoint=endpoint, network=Network()))
        settings = HiddenTunnelSettings(my_peer=my_peer, endpoint=endpoint, network=Network(), max_circuits=1,
                                        remove_tunnel_delay=0, dht_provider=DHTCommunityProvider(dht, 0))
        settings.peer_flags = {PEER_FLAG_RELAY, PEER_FLAG_SPEED_TEST, PEER_FLAG_EXIT_BT, PEER_FLAG_EXIT_IPV8}
        tunnel = HiddenTunnelCommunity(settings)
        communities += [dht, tunnel]
        tunnels.append(tunnel)
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

    walker = asyncio.ensure_future(walk())
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    walker.cancel()
    for c in communities:
        await c.unload()
    for t in tunnels:
        t.endpoint.close()


asyncio.run(main())
