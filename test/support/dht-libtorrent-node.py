#!/usr/bin/env python3
"""A libtorrent session whose only discovery is the DHT, for DHT interop tests, driven with JSON lines.

  dht-libtorrent-node.py --listen 127.0.0.X:PORT --bootstrap 127.0.0.Y:PORT

Listens on loopback only; LSD, UPnP and NAT-PMP are off; the DHT is bootstrapped from the given node only, with
the checks that reject loopback nodes (restricted routing/search IPs, BEP 42 node ids, dark-internet ranges) off.
Prints {"event":"ready","port":N}, then reads one command per line and answers {"id":N,"ok":true,...}:
  {"id":1,"cmd":"add_torrent","torrent":F,"save_path":D}   seed a torrent, announced into the DHT
  {"id":2,"cmd":"dht_announce","info_hash":HEX}            announce the torrent's info hash now
  {"id":3,"cmd":"get_peers","info_hash":HEX,"timeout":S}   a DHT get_peers lookup; answers with the peers found
  {"id":4,"cmd":"status"}                                   DHT node count
  {"id":5,"cmd":"stop"}
"""

import argparse
import json
import sys
import time

import libtorrent as lt


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    settings = {
        "listen_interfaces": "%s:%s" % (host, port),
        "outgoing_interfaces": host,
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "dht_bootstrap_nodes": args.bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert_category.dht | lt.alert_category.dht_operation | lt.alert_category.error
        | lt.alert_category.status,
    }
    session = lt.session(settings)
    deadline = time.time() + 10
    while not session.listen_port() and time.time() < deadline:
        time.sleep(0.02)
    emit({"event": "ready", "port": session.listen_port(), "version": lt.__version__})
    handles = {}
    found = {}

    def pump(wait_ms):
        session.wait_for_alert(wait_ms)
        for a in session.pop_alerts():
            if isinstance(a, lt.dht_get_peers_reply_alert):
                key = str(a.info_hash)
                found.setdefault(key, set()).update((p[0], p[1]) for p in a.peers())

    for line in sys.stdin:
        try:
            cmd = json.loads(line)
        except ValueError:
            continue
        reply = {"id": cmd.get("id"), "ok": True}
        try:
            name = cmd.get("cmd")
            if name == "add_torrent":
                atp = lt.add_torrent_params()
                atp.ti = lt.torrent_info(cmd["torrent"])
                atp.save_path = cmd["save_path"]
                atp.flags = (atp.flags | lt.torrent_flags.disable_lsd) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
                h = session.add_torrent(atp)
                handles[str(h.info_hashes().v1)] = h
                reply["infoHash"] = str(h.info_hashes().v1)
            elif name == "dht_announce":
                handles[cmd["info_hash"]].force_dht_announce()
            elif name == "get_peers":
                ih = lt.sha1_hash(bytes.fromhex(cmd["info_hash"]))
                found.pop(cmd["info_hash"], None)
                session.dht_get_peers(ih)
                end = time.time() + float(cmd.get("timeout", 10))
                while time.time() < end and not found.get(cmd["info_hash"]):
                    pump(100)
                reply["peers"] = [{"ip": ip, "port": p} for ip, p in sorted(found.get(cmd["info_hash"], set()))]
            elif name == "status":
                pump(0)
                reply["dhtNodes"] = session.status().dht_nodes
            elif name == "stop":
                emit(reply)
                return
            else:
                raise ValueError("unknown command %r" % name)
        except Exception as err:  # noqa: BLE001 - every failure goes back to the test as an answer
            reply = {"id": cmd.get("id"), "ok": False, "error": str(err)}
        emit(reply)


if __name__ == "__main__":
    main()
