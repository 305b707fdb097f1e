"""Runs py-ipv8 TunnelCommunity nodes on loopback for the tunnel interop tests.

Usage: py_ipv8_tunnel.py <spec json>; PY_IPV8_DIR names a py-ipv8 checkout (pure Python, 241d0c2).
spec = {"nodes": [{"host": "127.0.0.x", "exit": bool}], "walk_to": [[host, port]], "community_id": hex,
        "client": {"hops": n, "echo": [host, port], "count": n} | null}
Prints one JSON object per line: {"ready": [[host, port], ...]} once bound, {"circuit": n} when a client circuit
is ready, {"reply": "<hex>", "origin": [host, port]} for each datagram that came back, {"speed": n} when the exit answered
a speed test with n bytes, then runs until stdin closes.
"""
import asyncio
import json
import logging
import os
import sys

sys.path.insert(0, os.environ["PY_IPV8_DIR"])
logging.disable(logging.CRITICAL)

from ipv8.keyvault.crypto import default_eccrypto  # noqa: E402
from ipv8.messaging.anonymization.community import TunnelCommunity, TunnelSettings  # noqa: E402
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
    community_id = bytes.fromhex(spec["community_id"])

    class Tunnels(TunnelCommunity):
        pass

    Tunnels.community_id = community_id

    class Client(Tunnels):
        def on_raw_data(self, circuit, origin, data):
            emit({"reply": data.hex(), "origin": list(origin)})

    nodes = []
    client_spec = spec.get("client")
    for i, node in enumerate(spec["nodes"]):
        endpoint = UDPEndpoint(port=0, ip=node["host"])
        await endpoint.open()
        flags = {PEER_FLAG_RELAY, PEER_FLAG_SPEED_TEST}
        if node.get("exit"):
            flags |= {PEER_FLAG_EXIT_BT, PEER_FLAG_EXIT_IPV8}
        settings = TunnelSettings(my_peer=Peer(default_eccrypto.generate_key("curve25519")), endpoint=endpoint,
                                  network=Network(), max_circuits=1, remove_tunnel_delay=0)
        settings.peer_flags = flags
        cls = Client if (client_spec and i == 0) else Tunnels
        nodes.append(cls(settings))
    emit({"ready": [list(n.endpoint.get_address()) for n in nodes]})

    targets = [tuple(a) for a in spec.get("walk_to", [])] + [n.endpoint.get_address() for n in nodes]

    async def walk():
        while True:
            for n in nodes:
                for t in targets:
                    if t != n.endpoint.get_address():
                        n.walk_to(t)
            await asyncio.sleep(0.5)

    walker = asyncio.ensure_future(walk())

    if client_spec:
        client = nodes[0]
        hops = client_spec["hops"]
        client.build_tunnels(hops)
        for _ in range(600):
            circuits = client.find_circuits(hops=hops)
            if circuits:
                break
            await asyncio.sleep(0.1)
        else:
            emit({"error": "no circuit"})
            circuits = []
        if circuits:
            circuit = circuits[0]
            emit({"circuit": len(circuit.hops)})
            echo = tuple(client_spec["echo"])
            for i in range(client_spec["count"]):
                data = b"\x00\x00\x00\x00" + f"py datagram {i}".encode()
                client.send_data(circuit.hop.address, circuit.circuit_id, echo, ("0.0.0.0", 0), data)
            try:
                data, _rtt = await asyncio.wait_for(client.send_test_request(circuit, 100, 500), 10)
                emit({"speed": len(data)})
            except Exception as e:  # noqa: BLE001
                emit({"error": f"speed test: {e!r}"})

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    walker.cancel()
    for n in nodes:
        await n.unload()
        n.endpoint.close()


asyncio.run(main())
