import type { SocketAddress } from '../net/index.js'
import { decodeCredentials, decodeMethods, decodeRequest, encodeReply } from './codec.js'
import {
  AUTH_VERSION,
  Command,
  Method,
  Reply,
  SOCKS_VERSION,
  type Socks5Credentials,
  Socks5Error,
} from './types.js'

/** What the control connection does after some bytes arrived. */
export type ControlStep =
  /** Write these bytes to the client. */
  | { readonly kind: 'write'; readonly data: Buffer }
  /** Close the connection after the writes before it; `reason` is for counters and logs. */
  | { readonly kind: 'close'; readonly reason: 'method' | 'auth' | 'command' | 'malformed' }
  /** The client asked for a UDP association; `client` is the address it said it will send from. */
  | { readonly kind: 'associate'; readonly client: SocketAddress }

type State = 'methods' | 'auth' | 'request' | 'waiting' | 'associated' | 'closed'

/**
 * The control connection of one SOCKS5 client as a state machine without sockets: bytes in, steps out. It
 * negotiates the method (no authentication, or RFC 1929 username/password when credentials are set), then takes
 * one request. UDP ASSOCIATE is the only command served: CONNECT and BIND get "command not supported", as the
 * proxy relays UDP only. After the association the client may send nothing more; such bytes are ignored.
 *
 * @example
 * ```ts
 * const control = new Socks5Control()
 * for (const step of control.push(bytes)) if (step.kind === 'write') socket.write(step.data)
 * ```
 */
export class Socks5Control {
  readonly #credentials: Socks5Credentials | undefined
  #buffer: Buffer = Buffer.alloc(0)
  #state: State = 'methods'

  constructor(credentials?: Socks5Credentials) {
    this.#credentials = credentials
  }

  /** Where the negotiation is. */
  get state(): State {
    return this.#state
  }

  /** Feeds bytes from the client; returns what to do, in order. */
  push(data: Buffer): ControlStep[] {
    if (this.#state === 'closed' || this.#state === 'associated' || this.#state === 'waiting') return []
    this.#buffer = this.#buffer.length === 0 ? data : Buffer.concat([this.#buffer, data])
    const steps: ControlStep[] = []
    try {
      while (this.#step(steps)) {}
    } catch (err) {
      if (!(err instanceof Socks5Error)) throw err
      if (this.#state === 'request') steps.push({ kind: 'write', data: replyFor(err) })
      this.#close(steps, 'malformed')
    }
    return steps
  }

  /** Answers the association: success with the relay's address, or a failure reply and close. */
  associated(relay: SocketAddress | undefined, failure: number = Reply.GENERAL_FAILURE): ControlStep[] {
    if (this.#state !== 'waiting') return []
    if (relay === undefined) {
      const steps: ControlStep[] = [{ kind: 'write', data: encodeReply(failure) }]
      this.#close(steps, 'command')
      return steps
    }
    this.#state = 'associated'
    return [{ kind: 'write', data: encodeReply(Reply.SUCCEEDED, relay) }]
  }

  #step(steps: ControlStep[]): boolean {
    if (this.#state === 'methods') {
      const decoded = decodeMethods(this.#buffer)
      if (decoded === undefined) return false
      this.#consume(decoded.end)
      const { version, methods } = decoded.value
      if (version !== SOCKS_VERSION) throw new Socks5Error('MALFORMED', { reason: 'version', version })
      const wanted = this.#credentials === undefined ? Method.NO_AUTH : Method.USERNAME_PASSWORD
      if (!methods.includes(wanted)) {
        steps.push({ kind: 'write', data: Buffer.of(SOCKS_VERSION, Method.NO_ACCEPTABLE) })
        this.#close(steps, 'method')
        return false
      }
      steps.push({ kind: 'write', data: Buffer.of(SOCKS_VERSION, wanted) })
      this.#state = wanted === Method.NO_AUTH ? 'request' : 'auth'
      return true
    }
    if (this.#state === 'auth') {
      const decoded = decodeCredentials(this.#buffer)
      if (decoded === undefined) return false
      this.#consume(decoded.end)
      const { version, username, password } = decoded.value
      const ok =
        version === AUTH_VERSION &&
        username === this.#credentials?.username &&
        password === this.#credentials?.password
      steps.push({ kind: 'write', data: Buffer.of(AUTH_VERSION, ok ? 0 : 1) })
      if (!ok) {
        this.#close(steps, 'auth')
        return false
      }
      this.#state = 'request'
      return true
    }
    if (this.#state === 'request') {
      const decoded = decodeRequest(this.#buffer)
      if (decoded === undefined) return false
      this.#consume(decoded.end)
      const { command, address } = decoded.value
      if (command !== Command.UDP_ASSOCIATE) {
        steps.push({ kind: 'write', data: encodeReply(Reply.COMMAND_NOT_SUPPORTED) })
        this.#close(steps, 'command')
        return false
      }
      this.#state = 'waiting'
      steps.push({ kind: 'associate', client: address })
      return false
    }
    return false
  }

  #consume(count: number): void {
    this.#buffer = this.#buffer.subarray(count)
  }

  #close(steps: ControlStep[], reason: 'method' | 'auth' | 'command' | 'malformed'): void {
    this.#state = 'closed'
    this.#buffer = Buffer.alloc(0)
    steps.push({ kind: 'close', reason })
  }
}

function replyFor(err: Socks5Error): Buffer {
  return encodeReply(
    err.details.reason === 'address type' ? Reply.ADDRESS_TYPE_NOT_SUPPORTED : Reply.GENERAL_FAILURE,
  )
}
