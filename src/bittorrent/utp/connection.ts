import { Duplex } from 'node:stream'
import type { SocketAddress } from '../../net/index.js'
import { DelayHistory, Ledbat, RttEstimator } from './congestion.js'
import {
  emptyHeader,
  encodeHeader,
  encodePacket,
  HEADER_BYTES,
  PacketType,
  SEQ_MASK,
  seqDistance,
  seqLess,
  type UtpHeader,
  type UtpPacket,
} from './packet.js'
import { type UtpConnectionStats, UtpError } from './types.js'

/** Packets tracked per direction; sequence numbers in flight (or buffered out of order) stay below this span. */
const RING_SIZE = 4096
const RING_MASK = RING_SIZE - 1
/** Largest selective ACK bitmask we send (1024 packets past the ack). */
const MAX_SACK_BYTES = 128
/** Duplicate ACKs (or packets selectively acked past a hole) that mean the hole was lost. */
const DUPLICATE_ACKS = 3

/** Resolved tunables, shared by every connection of a socket. */
export interface ConnectionConfig {
  packetBytes: number
  recvBufferBytes: number
  sendBufferBytes: number
  connectTimeoutMs: number
  idleTimeoutMs: number
  keepaliveMs: number
  maxTimeouts: number
  nagle: boolean
  allowHalfOpen: boolean
}

/** What a connection needs from the socket that multiplexes it. */
export interface ConnectionHost {
  readonly config: ConnectionConfig
  nowMs(): number
  send(data: Buffer, to: SocketAddress): void
  /** Flushes pending ACKs of `conn` once the current batch of datagrams is processed. */
  deferAck(conn: UtpConnection): void
  /** The connection is finished; `clean` when both FINs were exchanged and acknowledged. */
  detach(conn: UtpConnection, clean: boolean): void
  countRetransmit(): void
  countPayload(sent: number, received: number): void
}

interface OutPacket {
  readonly buf: Buffer
  readonly seq: number
  readonly payloadBytes: number
  sentAtMs: number
  transmissions: number
  /** Declared lost (timeout): not counted in flight until sent again. */
  needResend: boolean
}

type State = 'syn-sent' | 'syn-recv' | 'connected' | 'closed'

/** How a connection was created. */
export interface ConnectionInit {
  remote: SocketAddress
  recvId: number
  sendId: number
  /** For an accepted connection: the SYN's sequence number. */
  synSeqNr?: number
  /** For an accepted connection: the window the SYN advertised. */
  peerWindowBytes?: number
}

/**
 * One uTP connection as a Node `Duplex` stream, so peer-wire code treats it like a TCP socket. Created by
 * {@link UtpSocket}; never constructed directly by other subsystems.
 */
export class UtpConnection extends Duplex {
  /** Address of the remote endpoint. */
  readonly remote: SocketAddress
  /** Connection id of packets we receive. */
  readonly recvId: number
  /** Connection id of packets we send. */
  readonly sendId: number
  /** True when we sent the SYN. */
  readonly initiator: boolean

  readonly #host: ConnectionHost
  readonly #cfg: ConnectionConfig
  readonly #maxPayload: number
  #state: State
  readonly #createdMs: number
  #connectListeners: Array<(err?: Error) => void> = []

  // send side
  #seqNr: number
  /** Highest sequence number the remote acknowledged cumulatively. */
  #lastAck: number
  #outRing: Array<OutPacket | undefined> | undefined
  #outCount = 0
  #resendCount = 0
  #bytesInFlight = 0
  #sendQueue: Buffer[] = []
  #sendQueueOffset = 0
  #queuedBytes = 0
  #pendingWriteCb: ((err?: Error | null) => void) | undefined
  #finalCb: ((err?: Error | null) => void) | undefined
  #writeEnded = false
  #finSeq = -1
  #finAcked = false
  #peerWnd: number
  #lossSeqNr: number
  #dupAcks = 0
  #rtoDeadlineMs = 0
  /** When to send a tail loss probe: nothing was acked for a while, maybe only our ACK was lost. */
  #probeDeadlineMs = 0
  #rttCandidate: OutPacket | undefined
  #zeroWindowSinceMs = 0
  readonly #ledbat: Ledbat
  readonly #rtt = new RttEstimator()
  readonly #delays = new DelayHistory()
  #queuingDelayUs = 0

  // receive side
  #ackNr = 0
  #inPayload: Array<Buffer | undefined> | undefined
  #inSeq: Int32Array | undefined
  #oooCount = 0
  #oooBytes = 0
  #eofSeq = -1
  #gotFin = false
  #replyMicro = 0
  #ackPending = false
  #lastAdvertisedWnd = 0
  #lastRecvMs: number
  #lastSendMs: number

  readonly #header: UtpHeader = emptyHeader()

  readonly #stats: Omit<
    UtpConnectionStats,
    'rttMs' | 'rtoMs' | 'cwndBytes' | 'bytesInFlight' | 'peerWindowBytes' | 'queuingDelayUs'
  > = {
    bytesSent: 0,
    bytesReceived: 0,
    packetsSent: 0,
    packetsReceived: 0,
    retransmits: 0,
    losses: 0,
    timeouts: 0,
  }

  /** @internal use {@link UtpSocket.connect} or the socket's `connection` event. */
  constructor(host: ConnectionHost, init: ConnectionInit) {
    super({
      allowHalfOpen: host.config.allowHalfOpen,
      writableHighWaterMark: 64 * 1024,
      readableHighWaterMark: 64 * 1024,
    })
    this.#host = host
    this.#cfg = host.config
    this.#maxPayload = this.#cfg.packetBytes - HEADER_BYTES
    this.remote = init.remote
    this.recvId = init.recvId
    this.sendId = init.sendId
    this.initiator = init.synSeqNr === undefined
    const now = host.nowMs()
    this.#createdMs = now
    this.#lastRecvMs = now
    this.#lastSendMs = now
    this.#ledbat = new Ledbat({ packetBytes: this.#maxPayload })
    this.#peerWnd = init.peerWindowBytes ?? this.#cfg.packetBytes
    if (init.synSeqNr === undefined) {
      this.#state = 'syn-sent'
      this.#seqNr = 1
    } else {
      this.#state = 'syn-recv'
      this.#seqNr = (Math.random() * 0x10000) & SEQ_MASK
      this.#ackNr = init.synSeqNr
    }
    this.#lastAck = (this.#seqNr - 1) & SEQ_MASK
    this.#lossSeqNr = this.#lastAck
  }

  /** Counters and congestion state of this connection. */
  get stats(): UtpConnectionStats {
    return {
      ...this.#stats,
      rttMs: this.#rtt.rttMs,
      rtoMs: this.#rtt.rtoMs,
      cwndBytes: this.#ledbat.cwndBytes,
      bytesInFlight: this.#bytesInFlight,
      peerWindowBytes: this.#peerWnd,
      queuingDelayUs: this.#queuingDelayUs,
    }
  }

  /** `syn-sent`, `syn-recv`, `connected` or `closed`. */
  get state(): State {
    return this.#state
  }

  /** @internal Sends the SYN of an outgoing connection; `done` runs once connected or failed. */
  start(done: (err?: Error) => void): void {
    this.#connectListeners.push(done)
    this.#queuePacket(PacketType.SYN, 0)
  }

  /** @internal Answers a SYN (first or repeated) with an ST_STATE. */
  acceptSyn(): void {
    this.#lastRecvMs = this.#host.nowMs()
    this.#sendState()
  }

  /** @internal Handles one packet addressed to this connection. `p` is reused by the caller after return. */
  receive(p: UtpPacket, nowMs: number): void {
    if (this.#state === 'closed') return
    this.#lastRecvMs = nowMs
    this.#stats.packetsReceived += 1
    if (p.type === PacketType.RESET) {
      this.#fail(new UtpError('CONNECTION_RESET', { remote: this.remote }), false)
      return
    }
    this.#replyMicro = (Math.floor(nowMs * 1000) - p.timestampUs) >>> 0
    if (p.type === PacketType.SYN) {
      if (!this.initiator) this.acceptSyn()
      return
    }
    if (this.#state === 'syn-sent') {
      // The SYN is sequence number 1; the answer's seq_nr is the first one the remote will use for data.
      if (p.ackNr !== 1) return
      this.#ackNr = (p.seqNr - 1) & SEQ_MASK
      this.#state = 'connected'
      this.#settleConnect()
    }
    // Anything after the SYN (data, an ACK of our data, a keepalive) shows the initiator got our answer.
    if (this.#state === 'syn-recv') this.#state = 'connected'
    this.#processAck(p, nowMs)
    if ((this.#state as State) === 'closed') return
    if (p.type === PacketType.DATA || p.type === PacketType.FIN) this.#processData(p)
    this.#trySend(nowMs)
  }

  /** @internal Runs the timers (retransmission, keepalive, idle, zero window) at `nowMs`. */
  tick(nowMs: number): void {
    if (this.#state === 'closed') return
    if (this.#state === 'syn-sent' && nowMs - this.#createdMs >= this.#cfg.connectTimeoutMs) {
      this.#fail(new UtpError('CONNECT_TIMEOUT', { remote: this.remote }), false)
      return
    }
    if (this.#state === 'syn-recv' && nowMs - this.#lastRecvMs > this.#cfg.idleTimeoutMs) {
      // A half-open ghost: a SYN and nothing after it, not even a keepalive. Close it quietly. (A real initiator
      // may stay silent for a while after connecting, so the connect timeout cannot tell a ghost apart.)
      this.#close(false)
      this.destroy()
      return
    }
    if (nowMs - this.#lastRecvMs > this.#cfg.idleTimeoutMs) {
      this.#fail(new UtpError('TIMED_OUT', { remote: this.remote, reason: 'idle' }))
      return
    }
    if (this.#rtoDeadlineMs !== 0 && nowMs >= this.#rtoDeadlineMs) this.#onTimeout(nowMs)
    else if (this.#probeDeadlineMs !== 0 && nowMs >= this.#probeDeadlineMs) this.#tailLossProbe(nowMs)
    else if (
      this.#zeroWindowSinceMs !== 0 &&
      this.#outCount === 0 &&
      nowMs - this.#zeroWindowSinceMs >= this.#rtt.rtoMs
    ) {
      // The remote advertised no room and its window update may have been lost: probe with one packet.
      this.#zeroWindowSinceMs = 0
      this.#peerWnd = this.#maxPayload
      this.#trySend(nowMs)
    }
    if (this.#state === 'connected' && nowMs - this.#lastSendMs >= this.#cfg.keepaliveMs) {
      this.#sendState(true)
    }
  }

  /** @internal Sends the deferred ACK, if one is pending. */
  flushAck(): void {
    if (this.#ackPending && this.#state !== 'closed') this.#sendState()
  }

  // Duplex

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (chunk.length === 0) {
      cb()
      return
    }
    this.#sendQueue.push(chunk)
    this.#queuedBytes += chunk.length
    this.#trySend(this.#host.nowMs())
    if (this.#queuedBytes <= this.#cfg.sendBufferBytes) cb()
    else this.#pendingWriteCb = cb
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#writeEnded = true
    this.#finalCb = cb
    this.#trySend(this.#host.nowMs())
  }

  override _read(): void {
    if (this.#state === 'closed') return
    const half = this.#cfg.recvBufferBytes / 2
    if (this.#lastAdvertisedWnd < half && this.#window() >= half) this.#sendState()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#state !== 'closed') {
      const clean = this.#finAcked && this.#gotFin
      if (!clean && this.#state !== 'syn-sent') this.#sendReset()
      this.#close(clean)
    }
    this.#settleConnect(err ?? new UtpError('CONNECTION_RESET', { remote: this.remote, reason: 'destroyed' }))
    cb(err)
  }

  // internals

  #close(clean: boolean): void {
    this.#state = 'closed'
    this.#outRing = undefined
    this.#inPayload = undefined
    this.#sendQueue = []
    this.#host.detach(this, clean)
  }

  #fail(err: UtpError, sendReset = true): void {
    if (this.#state === 'closed') return
    if (!sendReset) this.#close(false)
    this.destroy(err)
  }

  #settleConnect(err?: Error): void {
    const listeners = this.#connectListeners
    this.#connectListeners = []
    for (const listener of listeners) listener(err)
  }

  #window(): number {
    return Math.max(0, this.#cfg.recvBufferBytes - this.readableLength - this.#oooBytes)
  }

  #fillHeader(type: PacketType, seqNr: number, ackNr: number, nowMs: number): UtpHeader {
    const h = this.#header
    h.type = type
    h.connectionId = type === PacketType.SYN ? this.recvId : this.sendId
    h.timestampUs = Math.floor(nowMs * 1000) >>> 0
    h.timestampDiffUs = this.#replyMicro
    const wnd = this.#window()
    this.#lastAdvertisedWnd = wnd
    h.wndSize = wnd
    h.seqNr = seqNr
    h.ackNr = ackNr
    return h
  }

  #transmit(buf: Buffer, nowMs: number): void {
    this.#stats.packetsSent += 1
    this.#lastSendMs = nowMs
    this.#host.send(buf, this.remote)
  }

  /** An ST_STATE: acknowledges, carries our window and, with packets held out of order, a selective ACK. */
  #sendState(keepalive = false): void {
    const nowMs = this.#host.nowMs()
    this.#ackPending = false
    const sack = this.#oooCount > 0 ? this.#sackMask() : undefined
    // A keepalive acks one less so the remote cannot count it as a duplicate ACK (as libtorrent does).
    const ackNr = keepalive ? (this.#ackNr - 1) & SEQ_MASK : this.#ackNr
    const h = this.#fillHeader(PacketType.STATE, this.#seqNr, ackNr, nowMs)
    this.#transmit(encodePacket({ ...h, sack }), nowMs)
  }

  #sendReset(): void {
    const nowMs = this.#host.nowMs()
    const h = this.#fillHeader(PacketType.RESET, this.#seqNr, this.#ackNr, nowMs)
    this.#transmit(encodePacket(h), nowMs)
  }

  #sackMask(): Buffer | undefined {
    const inSeq = this.#inSeq
    const inPayload = this.#inPayload
    if (inSeq === undefined || inPayload === undefined) return undefined
    let highest = -1
    const limit = Math.min(RING_SIZE - 2, MAX_SACK_BYTES * 8)
    for (let i = 0; i < limit; i++) {
      const seq = (this.#ackNr + 2 + i) & SEQ_MASK
      const slot = seq & RING_MASK
      if (inPayload[slot] !== undefined && inSeq[slot] === seq) highest = i
    }
    if (highest < 0) return undefined
    const bytes = (Math.floor(highest / 32) + 1) * 4
    const mask = Buffer.alloc(bytes)
    for (let i = 0; i <= highest; i++) {
      const seq = (this.#ackNr + 2 + i) & SEQ_MASK
      const slot = seq & RING_MASK
      if (inPayload[slot] !== undefined && inSeq[slot] === seq)
        mask[i >> 3] = (mask[i >> 3] ?? 0) | (1 << (i & 7))
    }
    return mask
  }

  /** Queues a new outgoing packet (SYN, DATA with `payloadBytes` from the send queue, or FIN) and sends it. */
  #queuePacket(type: PacketType, payloadBytes: number): void {
    const nowMs = this.#host.nowMs()
    const buf = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes)
    buf[0] = 0
    let offset = HEADER_BYTES
    while (offset < buf.length) {
      const chunk = this.#sendQueue[0]!
      const take = Math.min(chunk.length - this.#sendQueueOffset, buf.length - offset)
      chunk.copy(buf, offset, this.#sendQueueOffset, this.#sendQueueOffset + take)
      offset += take
      this.#sendQueueOffset += take
      if (this.#sendQueueOffset === chunk.length) {
        this.#sendQueue.shift()
        this.#sendQueueOffset = 0
      }
    }
    this.#queuedBytes -= payloadBytes
    const seq = this.#seqNr
    this.#seqNr = (seq + 1) & SEQ_MASK
    const packet: OutPacket = { buf, seq, payloadBytes, sentAtMs: nowMs, transmissions: 0, needResend: false }
    this.#outRing ??= new Array<OutPacket | undefined>(RING_SIZE)
    this.#outRing[seq & RING_MASK] = packet
    this.#outCount += 1
    this.#bytesInFlight += payloadBytes
    if (type === PacketType.FIN) this.#finSeq = seq
    this.#stats.bytesSent += payloadBytes
    this.#host.countPayload(payloadBytes, 0)
    this.#sendOut(packet, type, nowMs)
  }

  #sendOut(packet: OutPacket, type: PacketType, nowMs: number): void {
    encodeHeader(packet.buf, this.#fillHeader(type, packet.seq, this.#ackNr, nowMs))
    packet.sentAtMs = nowMs
    packet.transmissions += 1
    // Our ack rides on this packet; a selective ACK still needs its own ST_STATE.
    if (this.#oooCount === 0) this.#ackPending = false
    if (this.#rtoDeadlineMs === 0) this.#rtoDeadlineMs = nowMs + this.#rtt.rtoMs
    if (this.#probeDeadlineMs === 0) this.#probeDeadlineMs = nowMs + this.#probeDelayMs()
    this.#transmit(packet.buf, nowMs)
  }

  #packetType(packet: OutPacket): PacketType {
    if (packet.seq === this.#finSeq) return PacketType.FIN
    if (this.initiator && packet.seq === 1 && packet.payloadBytes === 0 && this.#state === 'syn-sent') {
      return PacketType.SYN
    }
    return PacketType.DATA
  }

  #resend(packet: OutPacket, nowMs: number): void {
    if (packet.needResend) {
      packet.needResend = false
      this.#resendCount -= 1
      this.#bytesInFlight += packet.payloadBytes
    }
    this.#stats.retransmits += 1
    this.#host.countRetransmit()
    this.#sendOut(packet, this.#packetType(packet), nowMs)
  }

  #trySend(nowMs: number): void {
    if (this.#state !== 'connected' && this.#state !== 'syn-recv') return
    const ring = this.#outRing
    const cwnd = this.#ledbat.cwndBytes
    const limit = Math.min(cwnd, this.#peerWnd)
    if (this.#resendCount > 0 && ring !== undefined) {
      for (let seq = (this.#lastAck + 1) & SEQ_MASK; seq !== this.#seqNr; seq = (seq + 1) & SEQ_MASK) {
        const packet = ring[seq & RING_MASK]
        if (packet === undefined || packet.seq !== seq || !packet.needResend) continue
        if (this.#bytesInFlight > 0 && this.#bytesInFlight + packet.payloadBytes > limit) return
        this.#resend(packet, nowMs)
        if (this.#resendCount === 0) break
      }
    }
    while (this.#queuedBytes > 0) {
      if (seqDistance(this.#seqNr, this.#lastAck) >= RING_SIZE - 1) break
      const size = Math.min(this.#maxPayload, this.#queuedBytes)
      if (this.#bytesInFlight > 0 && this.#bytesInFlight + size > cwnd) break
      if (this.#bytesInFlight + size > this.#peerWnd) {
        if (this.#outCount === 0 && this.#zeroWindowSinceMs === 0) this.#zeroWindowSinceMs = nowMs
        break
      }
      // Nagle: a partial packet waits while data is in flight, unless the stream is ending.
      if (size < this.#maxPayload && this.#cfg.nagle && this.#outCount > 0 && !this.#writeEnded) break
      this.#queuePacket(PacketType.DATA, size)
    }
    if (this.#pendingWriteCb !== undefined && this.#queuedBytes <= this.#cfg.sendBufferBytes) {
      const cb = this.#pendingWriteCb
      this.#pendingWriteCb = undefined
      cb()
    }
    if (this.#writeEnded && this.#queuedBytes === 0 && this.#finSeq < 0) {
      this.#queuePacket(PacketType.FIN, 0)
    }
  }

  #ackPacket(seq: number): number {
    const ring = this.#outRing
    if (ring === undefined) return 0
    const slot = seq & RING_MASK
    const packet = ring[slot]
    if (packet === undefined || packet.seq !== seq) return 0
    ring[slot] = undefined
    this.#outCount -= 1
    if (packet.needResend) {
      packet.needResend = false
      this.#resendCount -= 1
    } else {
      this.#bytesInFlight -= packet.payloadBytes
    }
    // Karn: a retransmitted packet's ack does not say which copy it answers. Only the newest packet an ACK
    // covers gives a sample: older ones may have waited for a lost ACK and would inflate the estimate.
    if (
      packet.transmissions === 1 &&
      (this.#rttCandidate === undefined || seqLess(this.#rttCandidate.seq, seq))
    ) {
      this.#rttCandidate = packet
    }
    return packet.payloadBytes === 0 ? 1 : packet.payloadBytes
  }

  #processAck(p: UtpPacket, nowMs: number): void {
    const ack = p.ackNr
    const newly = seqDistance(ack, this.#lastAck)
    // An ack of something never sent is bogus; an older one is a reordered packet.
    if (newly < 0 || seqDistance(ack, (this.#seqNr - 1) & SEQ_MASK) > 0) return
    const sameWindow = this.#peerWnd === p.wndSize
    this.#peerWnd = p.wndSize
    if (this.#peerWnd >= this.#maxPayload) this.#zeroWindowSinceMs = 0
    const inFlightBefore = this.#bytesInFlight
    this.#rttCandidate = undefined
    let acked = 0
    for (let i = 1; i <= newly; i++) acked += this.#ackPacket((this.#lastAck + i) & SEQ_MASK)
    this.#lastAck = ack
    if (p.sack !== undefined) acked += this.#processSack(p.sack, ack, nowMs)
    const candidate = this.#rttCandidate as OutPacket | undefined
    if (candidate !== undefined) {
      this.#rtt.sample(nowMs - candidate.sentAtMs)
      this.#rttCandidate = undefined
    }
    if (newly > 0) {
      this.#dupAcks = 0
      this.#rtt.onProgress()
    } else if (
      this.#outCount > 0 &&
      p.type === PacketType.STATE &&
      p.sack === undefined &&
      sameWindow &&
      seqDistance(this.#seqNr, ack) > 1
    ) {
      this.#dupAcks += 1
      if (this.#dupAcks === DUPLICATE_ACKS) this.#fastResend((ack + 1) & SEQ_MASK, nowMs)
    }
    if (p.timestampDiffUs !== 0) this.#queuingDelayUs = this.#delays.add(p.timestampDiffUs, nowMs)
    if (acked > 0) this.#ledbat.onAck(acked, this.#queuingDelayUs, inFlightBefore)
    if (this.#outCount === 0) {
      this.#rtoDeadlineMs = 0
      this.#probeDeadlineMs = 0
    } else if (acked > 0) {
      this.#rtoDeadlineMs = nowMs + this.#rtt.rtoMs
      this.#probeDeadlineMs = nowMs + this.#probeDelayMs()
    }
    if (this.#finSeq >= 0 && !this.#finAcked && !seqLess(ack, this.#finSeq)) {
      this.#finAcked = true
      const cb = this.#finalCb
      this.#finalCb = undefined
      cb?.()
      this.#maybeFinish()
    }
  }

  /** Acks what the bitmask covers; a hole with three or more packets acked after it is lost. */
  #processSack(mask: Buffer, ack: number, nowMs: number): number {
    let acked = 0
    let sackedAfter = 0
    const bits = mask.length * 8
    // Walk from the highest bit down so each hole knows how many packets were acked past it.
    for (let i = bits - 1; i >= -1; i--) {
      const seq = (ack + 2 + i) & SEQ_MASK
      if (i >= 0 && ((mask[i >> 3] ?? 0) & (1 << (i & 7))) !== 0) {
        if (seqLess(seq, this.#seqNr)) {
          acked += this.#ackPacket(seq)
          sackedAfter += 1
        }
      } else if (sackedAfter >= DUPLICATE_ACKS) {
        this.#fastResend(seq, nowMs)
      }
    }
    return acked
  }

  #fastResend(seq: number, nowMs: number): void {
    const packet = this.#outRing?.[seq & RING_MASK]
    if (packet === undefined || packet.seq !== seq) return
    // Resend a hole once per round trip, not on every selective ACK that still shows it.
    if (packet.transmissions > 1 && nowMs - packet.sentAtMs < Math.max(this.#rtt.rttMs, 1)) return
    this.#onLoss(seq)
    this.#resend(packet, nowMs)
  }

  #onLoss(seq: number): void {
    // Cut the window at most once per round trip: only for a packet sent after the previous cut.
    if (seqLess(this.#lossSeqNr, seq)) {
      this.#ledbat.onLoss()
      this.#stats.losses += 1
      this.#lossSeqNr = (this.#seqNr - 1) & SEQ_MASK
    }
  }

  #probeDelayMs(): number {
    return Math.max(2 * this.#rtt.rttMs + 2 * this.#rtt.rttVarMs, 20)
  }

  /**
   * Tail loss probe (RFC 8985 in spirit): when a whole window went unacknowledged for two round trips, resend
   * its newest packet once. The receiver acks the duplicate at once, so a lost ACK or a lost tail costs two round
   * trips instead of a retransmission timeout. It neither cuts the window nor counts as a timeout.
   */
  #tailLossProbe(nowMs: number): void {
    this.#probeDeadlineMs = 0
    const ring = this.#outRing
    if (ring === undefined || this.#outCount === 0 || this.#state === 'syn-sent') return
    const newest = (this.#seqNr - 1) & SEQ_MASK
    const packet = ring[newest & RING_MASK]
    if (packet === undefined || packet.seq !== newest || packet.needResend) return
    this.#resend(packet, nowMs)
    // One probe per retransmission timeout period.
    this.#probeDeadlineMs = this.#rtoDeadlineMs
  }

  #onTimeout(nowMs: number): void {
    this.#stats.timeouts += 1
    this.#rtt.onTimeout()
    this.#probeDeadlineMs = 0
    if (this.#state !== 'syn-sent' && this.#rtt.backoff > this.#cfg.maxTimeouts) {
      this.#fail(new UtpError('TIMED_OUT', { remote: this.remote, reason: 'retransmissions' }))
      return
    }
    const ring = this.#outRing
    if (ring !== undefined && this.#outCount > 0) {
      if (this.#bytesInFlight > 0) this.#ledbat.onTimeout()
      for (let seq = (this.#lastAck + 1) & SEQ_MASK; seq !== this.#seqNr; seq = (seq + 1) & SEQ_MASK) {
        const packet = ring[seq & RING_MASK]
        if (packet === undefined || packet.seq !== seq || packet.needResend) continue
        packet.needResend = true
        this.#resendCount += 1
        this.#bytesInFlight -= packet.payloadBytes
      }
      this.#lossSeqNr = (this.#seqNr - 1) & SEQ_MASK
      const oldest = (this.#lastAck + 1) & SEQ_MASK
      const first = ring[oldest & RING_MASK]
      this.#rtoDeadlineMs = 0
      if (first !== undefined && first.seq === oldest) this.#resend(first, nowMs)
      this.#rtoDeadlineMs = nowMs + this.#rtt.rtoMs
    } else {
      this.#rtoDeadlineMs = 0
    }
  }

  #processData(p: UtpPacket): void {
    const seq = p.seqNr
    if (p.type === PacketType.FIN && this.#eofSeq < 0) this.#eofSeq = seq
    const ahead = seqDistance(seq, this.#ackNr)
    this.#ackPending = true
    this.#host.deferAck(this)
    if (ahead <= 0 || ahead >= RING_SIZE - 1) return
    if (this.#eofSeq >= 0 && seqLess(this.#eofSeq, seq)) return
    if (this.readableLength + this.#oooBytes > 2 * this.#cfg.recvBufferBytes) return
    if (ahead === 1) {
      this.#deliver(seq, p.payload)
      const inPayload = this.#inPayload
      const inSeq = this.#inSeq
      while (this.#oooCount > 0 && inPayload !== undefined && inSeq !== undefined) {
        const next = (this.#ackNr + 1) & SEQ_MASK
        const slot = next & RING_MASK
        const payload = inPayload[slot]
        if (payload === undefined || inSeq[slot] !== next) break
        inPayload[slot] = undefined
        this.#oooCount -= 1
        this.#oooBytes -= payload.length
        this.#deliver(next, payload)
      }
      return
    }
    this.#inPayload ??= new Array<Buffer | undefined>(RING_SIZE)
    this.#inSeq ??= new Int32Array(RING_SIZE).fill(-1)
    const slot = seq & RING_MASK
    if (this.#inPayload[slot] !== undefined && this.#inSeq[slot] === seq) return
    this.#inPayload[slot] = p.payload
    this.#inSeq[slot] = seq
    this.#oooCount += 1
    this.#oooBytes += p.payload.length
  }

  #deliver(seq: number, payload: Buffer): void {
    this.#ackNr = seq
    if (payload.length > 0 && seq !== this.#eofSeq) {
      this.#stats.bytesReceived += payload.length
      this.#host.countPayload(0, payload.length)
      this.push(payload)
    }
    if (seq === this.#eofSeq && !this.#gotFin) {
      this.#gotFin = true
      this.push(null)
      this.#maybeFinish()
    }
  }

  #maybeFinish(): void {
    if (!this.#gotFin || !this.#finAcked || this.#state === 'closed') return
    // Both directions are done. Ack the remote's FIN now, then leave the socket to answer its repeats.
    this.#sendState()
    this.#close(true)
  }
}
