export { CoreClient, CoreClientError, type CoreClientErrorCode, restErrorText } from './client.js'
export { CLIENT_COMMANDS, type ClientIo, downloadUri, parseClientArgs, runClientCommand } from './commands.js'
export { formatBytes, formatEta, formatProgress, formatRate } from './format.js'
export { type CliIo, CORE_SERVICES, type CoreService, main } from './main.js'
