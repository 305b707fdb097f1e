export { type CliIo, CORE_SERVICES, type CoreService, main } from './main.js'
