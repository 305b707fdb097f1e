/**
 * The watch folder (Tribler's `watch_folder` settings): every .torrent file dropped into the folder, or any folder
 * below it, is started as a download once; a file that is not a torrent is renamed `<name>.corrupt` and reported
 * with the `watch_folder_corrupt_torrent` event.
 *
 * @example
 * ```ts
 * session.addService((deps) => new WatchFolder(deps, { downloads: () => findManager(session) }), {
 *   readableState: 'Starting watch folder...',
 * })
 * ```
 */

export {
  type ScanResult,
  WATCH_FOLDER_INTERVAL_MS,
  WATCH_FOLDER_SERVICE,
  type WatchFolderDeps,
  type WatchFolderOptions,
} from './types.js'
export { WATCH_FOLDER_MIGRATIONS, WatchFolder } from './watch-folder.js'
