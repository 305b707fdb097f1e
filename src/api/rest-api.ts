import type { AddressInfo } from 'node:net'
import { logger, type Service } from '../common/index.js'
import type { Session } from '../session/index.js'
import { ApiError } from './errors.js'
import { type ApiServer, buildApiServer } from './server.js'
import { type ApiOptions, DEFAULT_API_PORT } from './types.js'

const log = logger('api')
const RETRY_PORTS = 9

/**
 * The REST API as a session service: listens on `api.host` (127.0.0.1) and the chosen port, records it as
 * `http_api~port`, and on stop ends every events stream and closes the server. Add it as an early service so it
 * answers `/state` and `/events` during start-up and shutdown.
 *
 * @example
 * ```ts
 * const api = session.addService(() => new RestApi(session, { port: 8085 }), {
 *   early: true,
 *   readableState: 'Starting HTTP API...',
 * })
 * await session.start()
 * console.log(api.url) // http://127.0.0.1:8085
 * ```
 */
export class RestApi implements Service {
  readonly name = 'http_api'
  readonly #session: Session
  readonly #opts: ApiOptions
  #server: ApiServer | undefined
  #address: AddressInfo | undefined

  constructor(session: Session, opts: ApiOptions = {}) {
    this.#session = session
    this.#opts = opts
  }

  /** The fastify instance, once started. */
  get server(): ApiServer | undefined {
    return this.#server
  }

  /** `http://host:port` once listening. */
  get url(): string {
    if (this.#address === undefined) return ''
    const host = this.#address.family === 'IPv6' ? `[${this.#address.address}]` : this.#address.address
    return `http://${host}:${this.#address.port}`
  }

  async start(): Promise<void> {
    const config = this.#session.config
    const host = this.#opts.host ?? config.getString('api', 'host')
    const configured = config.getNumber('http_api', 'port')
    const port = this.#opts.port ?? (configured === -1 ? DEFAULT_API_PORT : configured)
    const server = await buildApiServer(this.#session, { ...this.#opts, host })
    const attempts = config.getBoolean('http_api', 'retry_port') && port !== 0 ? RETRY_PORTS + 1 : 1
    for (let i = 0; i < attempts; i++) {
      try {
        await server.app.listen({ host, port: port + i })
        break
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EADDRINUSE') {
          await server.app.close()
          throw new ApiError('LISTEN_FAILED', { host, port, cause: err })
        }
        if (i === attempts - 1) {
          await server.app.close()
          throw new ApiError('PORT_IN_USE', { host, port }, `port ${port} on ${host} is already in use`)
        }
      }
    }
    this.#server = server
    this.#address = server.app.server.address() as AddressInfo
    this.#session.ports.set('http_api~port', this.#address.port)
    log.info('REST API listening', { url: this.url })
  }

  async stop(): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    server.events.close()
    await server.app.close()
  }
}
