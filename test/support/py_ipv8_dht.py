"""Runs py-ipv8 DHTDiscoveryCommunity nodes on loopback for the DHT interop tests.

Usage: py_ipv8_dht.py <spec json>; PY_IPV8_DIR names a py-ipv8 checkout (pure Python, 241d0c2).
spec = {"hosts": ["127.0.0.x", ...], "walk_to": [[host, port]],
        "pex": {"info_hash": hex, "seeder_pks": [hex per node]} | absent}
With "pex", every node also runs the PexCommunity of that info-hash, announcing its seeder key.
Prints {"ready": [[host, port], ...]} once bound, then answers one JSON command per stdin line, each answer on
one line with the command's "id":
  {"cmd": "status"}                               -> {"nodes": [routing table size per node]}
  {"cmd": "store", "node": i, "key": hex, "value": hex}          -> {"stored": n} | {"error": str}
  {"cmd": "find", "node": i, "key": hex}                         -> {"values": [[hex, hex | null], ...]} | {"error"}
  {"cmd": "announce", "node": i, "info_hash": hex, "intro_pk": hex, "seeder_pk": hex, "address": [host, port]}
                                                                 -> {"announced": true}
  {"cmd": "pex", "node": i}  -> {"intro_points": [...]} as the node's PexCommunity knows them
  {"cmd": "lookup", "node": i, "info_hash": hex}
      -> {"intro_points": [{"address": [host, port], "key": hex, "seeder_pk": hex, "source": n}]}
Exits when stdin closes.
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
from ipv8.messaging.anonymization.pex import PexCommunity, PexSettings  # noqa: E402
from ipv8.messaging.anonymization.tunnel import IntroductionPoint  # noqa: E402
from ipv8.messaging.interfaces.udp.endpoint import UDPEndpoint, UDPv4Address  # noqa: E402
from ipv8.peer import Peer  # noqa: E402
from ipv8.peerdiscovery.network import Network  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def intro_json(intro_points):
    return {"intro_points": [{"address": list(ip.peer.address), "key": ip.peer.public_key.key_to_bin().hex(),
                              "seeder_pk": ip.seeder_pk.hex(), "source": ip.source} for ip in intro_points]}


async def handle(nodes, providers, pexes, command):
    node = nodes[command.get("node", 0)]
    provider = providers[command.get("node", 0)]
    cmd = command["cmd"]
    if cmd == "status":
        return {"nodes": [sum(len(b.nodes) for t in n.routing_tables.values() for b in t.trie.values())
                          for n in nodes]}
    if cmd == "store":
        stored = await node.store_value(bytes.fromhex(command["key"]), bytes.fromhex(command["value"]))
        return {"stored": len(stored)}
    if cmd == "find":
        values = await node.find_values(bytes.fromhex(command["key"]))
        return {"values": [[data.hex(), pk.hex() if pk else None] for data, pk in values]}
    if cmd == "announce":
        intro = IntroductionPoint(Peer(bytes.fromhex(command["intro_pk"]), UDPv4Address(*command["address"])),
                                  bytes.fromhex(command["seeder_pk"]))
        await provider.announce(bytes.fromhex(command["info_hash"]), intro)
        return {"announced": True}
    if cmd == "lookup":
        result = await provider.lookup(bytes.fromhex(command["info_hash"]))
        return intro_json(result[1] if result else [])
    if cmd == "pex":
        return intro_json(pexes[command.get("node", 0)].get_intro_points())
    return {"error": f"unknown command {cmd}"}


async def main():
    spec = json.loads(sys.argv[1])
    nodes = []
    pexes = []
    pex_spec = spec.get("pex")
    for i, host in enumerate(spec["hosts"]):
        endpoint = UDPEndpoint(port=0, ip=host)
        await endpoint.open()
        my_peer = Peer(default_eccrypto.generate_key("curve25519"))
        settings = CommunitySettings(my_peer=my_peer, endpoint=endpoint, network=Network())
        nodes.append(DHTDiscoveryCommunity(settings))
        if pex_spec:
            pex = PexCommunity(PexSettings(my_peer=my_peer, endpoint=endpoint, network=Network(),
                                           info_hash=bytes.fromhex(pex_spec["info_hash"])))
            pex.start_announce(bytes.fromhex(pex_spec["seeder_pks"][i]))
            pexes.append(pex)
    providers = [DHTCommunityProvider(n, 0) for n in nodes]
    emit({"ready": [list(n.endpoint.get_address()) for n in nodes]})

    targets = [tuple(a) for a in spec.get("walk_to", [])] + [n.endpoint.get_address() for n in nodes]

    async def walk():
        while True:
            for n in nodes + pexes:
                for t in targets:
                    if t != n.endpoint.get_address():
                        n.walk_to(t)
            await asyncio.sleep(0.5)

    walker = asyncio.ensure_future(walk())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def run(command):
        try:
            answer = await asyncio.wait_for(handle(nodes, providers, pexes, command), 30)
        except Exception as e:  # noqa: BLE001
            answer = {"error": repr(e)}
        emit({"id": command.get("id"), **answer})

    while True:
        line = await reader.readline()
        if not line:
            break
        asyncio.ensure_future(run(json.loads(line)))
    walker.cancel()
    for n in pexes + nodes:
        await n.unload()
    for n in nodes:
        n.endpoint.close()


asyncio.run(main())
