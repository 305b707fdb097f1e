export { type CliIo, main } from './main.js'
