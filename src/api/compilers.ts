import { createRequire } from 'node:module'
import type { FastifyServerOptions } from 'fastify'

const require = createRequire(import.meta.url)

type ValidatorFactory = (externalSchemas: unknown, options: unknown) => (route: unknown) => Validate
type Validate = ((data: unknown, ctx?: unknown) => unknown) & { errors?: unknown; schemaEnv?: unknown }

/**
 * Schema compilers that cost nothing at start-up: a route's validator is compiled by Ajv on its first request,
 * and responses are serialised with `JSON.stringify` (response schemas only document the API). Compiling every
 * schema up front took most of the REST server's start time.
 */
export const LAZY_COMPILERS = {
  compilersFactory: {
    buildValidator: (externalSchemas: unknown, options: unknown) => {
      let compile: ((route: unknown) => Validate) | undefined
      return (route: unknown) => {
        let validate: Validate | undefined
        const lazy: Validate = (data) => {
          if (validate === undefined) {
            const factory = (require('@fastify/ajv-compiler') as () => ValidatorFactory)()
            compile ??= factory(externalSchemas, options)
            validate = compile(route)
          }
          const ok = validate(data)
          lazy.errors = validate.errors
          return ok
        }
        return lazy
      }
    },
    buildSerializer: () => () => (data: unknown) => JSON.stringify(data),
  },
} as unknown as NonNullable<FastifyServerOptions['schemaController']>
