#!/usr/bin/env python3
"""A real libtorrent peer for tests, driven over stdin/stdout with JSON lines.

Two modes:

  libtorrent_peer.py create --path P --out F [--piece-length N] [--private]
      Makes a v1 .torrent of file or folder P (no trackers), writes it to F and prints one JSON object describing
      it (info hash, files with offsets and pad flags, piece hashes, the info dictionary in hex).

  libtorrent_peer.py run --listen 127.0.0.X:PORT [--no-tcp] [--no-utp] [--upload-rate B/S] [--encryption enabled|disabled|forced]
                         [--enc-level both|rc4|plaintext] [--prefer-rc4] [--socks5 HOST:PORT [--socks5-auth U:P]]
                         [--dht [--dht-bootstrap HOST:PORT ...]]
      Starts a session on loopback only (--encryption sets in_enc_policy and out_enc_policy, --enc-level
      allowed_enc_level: the payload methods allowed after an encrypted handshake; --socks5 sends peer and tracker
      traffic through a SOCKS5 proxy): LSD, UPnP and NAT-PMP are off and multiple connections per IP are allowed.
      The DHT is off unless --dht; then it is bootstrapped from the --dht-bootstrap nodes only (none by default,
      never the public routers), with the checks that reject loopback nodes off, and torrents use it.
      Prints {"event":"ready","port":N} once listening, then reads one command per line:
        {"id":1,"cmd":"add_torrent","torrent":F,"save_path":D,"seed":true|false,"seed_mode":false}
        {"id":2,"cmd":"add_peer","ip":"127.0.0.2","port":6881}
        {"id":3,"cmd":"status"}
        {"id":4,"cmd":"dht_announce","info_hash":HEX}   announce (get_peers, then announce_peer) into the DHT now
        {"id":5,"cmd":"stop"}
      Each command gets {"id":N,"ok":true,...} or {"id":N,"ok":false,"error":"..."}. Notable alerts are printed as
      {"event":"alert","type":...,"message":...}. The process exits when stdin closes or on "stop".
"""

import argparse
import json
import os
import select
import sys
import time

import libtorrent as lt

# peer_info::utp_socket (bit 17 in libtorrent 2.0); the Python binding does not export it.
UTP_SOCKET_FLAG = getattr(lt.peer_info, "utp_socket", 1 << 17)
RC4_FLAG = getattr(lt.peer_info, "rc4_encrypted", 1 << 19)
PLAINTEXT_ENCRYPTED_FLAG = getattr(lt.peer_info, "plaintext_encrypted", 1 << 20)


def peer_encryption(flags):
    if flags & RC4_FLAG:
        return "rc4"
    if flags & PLAINTEXT_ENCRYPTED_FLAG:
        return "plaintext"
    return "none"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe_torrent(info, data):
    files = info.files()
    out_files = []
    for i in range(files.num_files()):
        out_files.append(
            {
                "path": files.file_path(i),
                "length": files.file_size(i),
                "offset": files.file_offset(i),
                "pad": bool(files.file_flags(i) & lt.file_storage.flag_pad_file),
            }
        )
    hashes = [info.hash_for_piece(i).hex() for i in range(info.num_pieces())]
    info_dict = lt.bencode(lt.bdecode(data)[b"info"])
    return {
        "infoHash": str(info.info_hashes().v1),
        "name": info.name(),
        "pieceLength": info.piece_length(),
        "totalLength": info.total_size(),
        "numPieces": info.num_pieces(),
        "files": out_files,
        "pieces": hashes,
        "infoHex": info_dict.hex(),
    }


def cmd_create(args):
    fs = lt.file_storage()
    lt.add_files(fs, args.path)
    # libtorrent 2.0 aligns files to pieces with pad files only in hybrid (v1 + v2) torrents; their v1 side is
    # what a v1 client sees, pad files included.
    flags = 0 if args.pad else lt.create_torrent.v1_only
    t = lt.create_torrent(fs, args.piece_length, flags=flags)
    t.set_creator("tribler-ts test harness")
    if args.private:
        t.set_priv(True)
    lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(args.path)))
    data = lt.bencode(t.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    info = lt.torrent_info(lt.bdecode(data))
    emit(describe_torrent(info, data))


def endpoint(ep):
    return {"ip": ep[0], "port": ep[1]}


class Runner:
    def __init__(self, args):
        host, port = args.listen.rsplit(":", 1)
        self.host = host
        policy = {"enabled": lt.enc_policy.enabled, "disabled": lt.enc_policy.disabled, "forced": lt.enc_policy.forced}[
            args.encryption
        ]
        settings = {
            "listen_interfaces": "%s:%s" % (host, port),
            "outgoing_interfaces": host,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_ip_notifier": False,
            "dht_bootstrap_nodes": ",".join(args.dht_bootstrap) if args.dht else "",
            "allow_multiple_connections_per_ip": True,
            "enable_incoming_tcp": not args.no_tcp,
            "enable_outgoing_tcp": not args.no_tcp,
            "enable_incoming_utp": not args.no_utp,
            "enable_outgoing_utp": not args.no_utp,
            "in_enc_policy": policy,
            "out_enc_policy": policy,
            "allowed_enc_level": {"both": lt.enc_level.both, "rc4": lt.enc_level.rc4, "plaintext": lt.enc_level.plaintext}[
                args.enc_level
            ],
            "prefer_rc4": args.prefer_rc4,
            "user_agent": "tribler-ts-test/libtorrent-" + lt.__version__,
            "upload_rate_limit": args.upload_rate,
            "alert_mask": lt.alert_category.error | lt.alert_category.status | lt.alert_category.peer | lt.alert_category.connect,
        }
        if args.dht:
            # A DHT of loopback nodes: libtorrent otherwise drops them (one node per IP, BEP 42 ids for 127.x,
            # "dark internet" ranges) and would never learn of the other side.
            settings.update(
                {
                    "enable_dht": True,
                    "dht_restrict_routing_ips": False,
                    "dht_restrict_search_ips": False,
                    "dht_enforce_node_id": False,
                    "dht_prefer_verified_node_ids": False,
                    "dht_ignore_dark_internet": False,
                }
            )
            settings["alert_mask"] |= lt.alert_category.dht
        self.dht = args.dht
        if args.socks5:
            # Behind a proxy libtorrent binds 0.0.0.0 without incoming connections, and a peer whose local address
            # is not one of outgoing_interfaces is dropped ("no such device"): leave them unset.
            del settings["outgoing_interfaces"]
            proxy_host, proxy_port = args.socks5.rsplit(":", 1)
            user, _, password = (args.socks5_auth or "").partition(":")
            settings.update(
                {
                    "proxy_type": lt.proxy_type_t.socks5_pw if args.socks5_auth else lt.proxy_type_t.socks5,
                    "proxy_hostname": proxy_host,
                    "proxy_port": int(proxy_port),
                    "proxy_username": user,
                    "proxy_password": password,
                    "proxy_peer_connections": True,
                    "proxy_tracker_connections": True,
                    "proxy_hostnames": True,
                }
            )
        self.proxied = bool(args.socks5)
        self.session = lt.session(settings)
        if args.upload_rate:
            # Loopback peers are in libtorrent's unlimited local peer class; put everyone in the global class so
            # the limit applies on 127.0.0.0/8 too.
            classes = lt.ip_filter()
            classes.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
            self.session.set_peer_class_filter(classes)
        self.handles = {}
        
    def wait_listening(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            for a in self.session.pop_alerts():
                if isinstance(a, lt.listen_failed_alert):
                    emit({"event": "error", "message": a.message()})
                    sys.exit(2)
                # Behind a proxy libtorrent opens a "no-incoming" socket and listen_port() stays 0.
                if self.proxied and isinstance(a, lt.listen_succeeded_alert):
                    return a.port
            port = self.session.listen_port()
            if port:
                return port
            time.sleep(0.02)
        emit({"event": "error", "message": "listen timeout"})
        sys.exit(2)

    NOTABLE = (
        lt.torrent_finished_alert,
        lt.peer_error_alert,
        lt.peer_disconnected_alert,
        lt.peer_connect_alert,
        lt.hash_failed_alert,
        lt.torrent_error_alert,
        lt.metadata_received_alert,
        lt.listen_failed_alert,
        lt.peer_ban_alert,
        lt.dht_bootstrap_alert,
        lt.dht_reply_alert,
    )

    def forward_alerts(self):
        for a in self.session.pop_alerts():
            if isinstance(a, self.NOTABLE):
                emit({"event": "alert", "type": type(a).__name__, "message": a.message()})

    def handle_for(self, cmd):
        ih = cmd.get("info_hash")
        if ih is None:
            if len(self.handles) != 1:
                raise ValueError("info_hash is required when more than one torrent is added")
            return next(iter(self.handles.values()))
        if ih not in self.handles:
            raise ValueError("unknown torrent " + ih)
        return self.handles[ih]

    def add_torrent(self, cmd):
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(cmd["torrent"])
        atp.save_path = cmd["save_path"]
        flags = lt.torrent_flags.disable_lsd
        if not self.dht:
            flags |= lt.torrent_flags.disable_dht
        flags &= ~lt.torrent_flags.auto_managed
        flags &= ~lt.torrent_flags.paused
        if cmd.get("seed_mode"):
            flags |= lt.torrent_flags.seed_mode
        if not cmd.get("pex", True):
            flags |= lt.torrent_flags.disable_pex
        atp.flags = flags
        h = self.session.add_torrent(atp)
        ih = str(h.info_hashes().v1)
        self.handles[ih] = h
        return {"infoHash": ih}

    def status(self, cmd):
        torrents = []
        for ih, h in self.handles.items():
            s = h.status()
            peers = []
            for p in h.get_peer_info():
                peers.append(
                    {
                        "ip": p.ip[0],
                        "port": p.ip[1],
                        "client": p.client.decode("utf-8", "replace") if isinstance(p.client, bytes) else p.client,
                        "utp": bool(p.flags & UTP_SOCKET_FLAG),
                        "encryption": peer_encryption(p.flags),
                        "outgoing": bool(p.flags & lt.peer_info.outgoing_connection),
                        "seed": bool(p.flags & lt.peer_info.seed),
                        "progress": p.progress,
                        "totalDownload": p.total_download,
                        "totalUpload": p.total_upload,
                    }
                )
            torrents.append(
                {
                    "infoHash": ih,
                    "state": str(s.state),
                    "progress": s.progress,
                    "isSeeding": s.is_seeding,
                    "isFinished": s.is_finished,
                    "totalDone": s.total_done,
                    "totalPayloadDownload": s.total_payload_download,
                    "totalPayloadUpload": s.total_payload_upload,
                    "numPeers": s.num_peers,
                    "error": str(s.errc.message()) if s.errc.value() else None,
                    "peers": peers,
                }
            )
        return {"torrents": torrents, "port": self.session.listen_port()}

    def execute(self, line):
        """Runs one command line; returns False on "stop"."""
        try:
            cmd = json.loads(line)
        except ValueError as e:
            emit({"event": "error", "message": "bad command: %s" % e})
            return True
        cid = cmd.get("id")
        try:
            name = cmd.get("cmd")
            if name == "add_torrent":
                result = self.add_torrent(cmd)
            elif name == "add_peer":
                self.handle_for(cmd).connect_peer((cmd["ip"], int(cmd["port"])))
                result = {}
            elif name == "status":
                result = self.status(cmd)
            elif name == "dht_announce":
                if not self.dht:
                    raise ValueError("the DHT is off (start with --dht)")
                self.handle_for(cmd).force_dht_announce()
                result = {}
            elif name == "stop":
                emit({"id": cid, "ok": True})
                return False
            else:
                raise ValueError("unknown command %r" % name)
            emit(dict(result, id=cid, ok=True))
        except Exception as e:  # reported to the test, the peer keeps running
            emit({"id": cid, "ok": False, "error": "%s: %s" % (type(e).__name__, e)})
        return True

    def run(self):
        # One thread does everything: the Python binding is not safe when one thread pops alerts while another
        # adds torrents or reads their status (a rare crash without a Python traceback).
        port = self.wait_listening()
        emit({"event": "ready", "port": port, "version": lt.__version__})
        stdin = sys.stdin.fileno()
        pending = b""
        running = True
        while running:
            readable, _, _ = select.select([stdin], [], [], 0.05)
            self.forward_alerts()
            if not readable:
                continue
            chunk = os.read(stdin, 65536)
            if not chunk:
                break
            pending += chunk
            while running and b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                line = line.strip()
                if line:
                    running = self.execute(line.decode("utf-8"))
        self.forward_alerts()
        for h in self.handles.values():
            self.session.remove_torrent(h)
        del self.session


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("create")
    c.add_argument("--path", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--piece-length", type=int, default=0)
    c.add_argument("--private", action="store_true")
    c.add_argument("--pad", action="store_true", help="hybrid v1+v2 torrent: files aligned to pieces by pad files")
    r = sub.add_parser("run")
    r.add_argument("--listen", required=True)
    r.add_argument("--no-tcp", action="store_true")
    r.add_argument("--no-utp", action="store_true")
    r.add_argument("--upload-rate", type=int, default=0, help="bytes per second, 0 unlimited")
    r.add_argument("--encryption", choices=["enabled", "disabled", "forced"], default="enabled")
    r.add_argument("--enc-level", choices=["both", "rc4", "plaintext"], default="both")
    r.add_argument("--prefer-rc4", action="store_true")
    r.add_argument("--socks5", help="HOST:PORT of a SOCKS5 proxy for peer (uTP through UDP ASSOCIATE) and tracker traffic")
    r.add_argument("--socks5-auth", help="USER:PASSWORD for the SOCKS5 proxy")
    r.add_argument("--dht", action="store_true", help="enable the DHT (bootstrapped from --dht-bootstrap only)")
    r.add_argument("--dht-bootstrap", action="append", default=[], help="HOST:PORT of a DHT node to bootstrap from")
    args = parser.parse_args()
    if args.mode == "create":
        cmd_create(args)
    else:
        Runner(args).run()


if __name__ == "__main__":
    main()
