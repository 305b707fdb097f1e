export { Store, StoreError } from './store.js'
export type { Db, Migration, MigrationSet, PendingMigration, StoreErrorCode } from './types.js'
