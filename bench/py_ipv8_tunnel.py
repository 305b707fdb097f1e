"""py-ipv8's side of bench:tunnel: the same set-up (a client and four exits on their own 127.0.0.x addresses, a
UDP sink acknowledging every 16th datagram, a window of 512 1 KiB datagrams) run by py-ipv8's pure-Python
TunnelCommunity. PY_IPV8_DIR names the checkout; prints one JSON line per hop count."""
import asyncio
import json
import logging
import os
import struct
import sys
import time

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

PAYLOAD = 1024
WINDOW = 512
ACK_EVERY = 16
STALL = 0.2
DURATION = float(os.environ.get("TUNNEL_BENCH_MS", "5000")) / 1000


class Client(TunnelCommunity):
    on_ack = None

    def on_raw_data(self, circuit, origin, data):
        if self.on_ack and len(data) >= 8:
            self.on_ack(struct.unpack_from("!I", data, 4)[0])


class Sink(asyncio.DatagramProtocol):
    def __init__(self):
        self.received = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received += 1
        if self.received % ACK_EVERY == 0:
            self.transport.sendto(struct.pack("!II", 0, self.received), addr)


async def main():
    loop = asyncio.get_running_loop()
    nodes = []
    for i in range(5):
        endpoint = UDPEndpoint(port=0, ip=f"127.0.0.{101 + i}")
        await endpoint.open()
        settings = TunnelSettings(my_peer=Peer(default_eccrypto.generate_key("curve25519")), endpoint=endpoint,
                                  network=Network(), max_circuits=1, remove_tunnel_delay=0)
        settings.peer_flags = {PEER_FLAG_RELAY, PEER_FLAG_SPEED_TEST}
        if i > 0:
            settings.peer_flags |= {PEER_FLAG_EXIT_BT, PEER_FLAG_EXIT_IPV8}
        nodes.append((Client if i == 0 else TunnelCommunity)(settings))
    for _ in range(40):
        for n in nodes:
            for m in nodes:
                if m is not n:
                    n.walk_to(m.endpoint.get_address())
        await asyncio.sleep(0.1)
    sink = Sink()
    transport, _ = await loop.create_datagram_endpoint(lambda: sink, local_addr=("127.0.0.110", 0))
    sink_addr = transport.get_extra_info("sockname")[:2]
    client = nodes[0]
    for hops in (1, 3):
        client.build_tunnels(hops)
        for _ in range(300):
            circuits = client.find_circuits(hops=hops)
            if circuits:
                break
            await asyncio.sleep(0.1)
        else:
            print(json.dumps({"hops": hops, "error": "no circuit"}), flush=True)
            continue
        circuit = circuits[0]
        sink.received = 0
        state = {"sent": 0, "acked": 0, "lost": 0, "progress": time.perf_counter(), "done": False}
        payload = bytearray(b"a" * PAYLOAD)
        payload[0:4] = b"\x00\x00\x00\x00"
        payload = bytes(payload)

        def pump():
            while not state["done"] and state["sent"] - state["acked"] - state["lost"] < WINDOW:
                state["sent"] += 1
                client.send_data(circuit.hop.address, circuit.circuit_id, sink_addr, ("0.0.0.0", 0), payload)

        def on_ack(received):
            if received > state["acked"]:
                state["acked"] = received
                state["progress"] = time.perf_counter()
                pump()

        client.on_ack = on_ack
        start = time.perf_counter()
        cpu_start = time.process_time()
        pump()
        while time.perf_counter() - start < DURATION:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            if now - state["progress"] > STALL:
                state["lost"] = state["sent"] - state["acked"]
                state["progress"] = now
            pump()
        state["done"] = True
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        nbytes = sink.received * PAYLOAD
        print(json.dumps({"hops": hops, "mb_per_sec": nbytes / seconds / 1e6,
                          "cpu_sec_per_gb": cpu / (nbytes / 1e9) if nbytes else None}), flush=True)
        client.on_ack = None
    transport.close()
    for n in nodes:
        await n.unload()
        n.endpoint.close()


asyncio.run(main())
