import { useEffect, useMemo, useRef, useState } from 'react'
import { errorText, isStatus } from '../api/client.js'
import type { SettingsResponse, TorrentInfo } from '../api/types.js'
import { torrentFiles, toTorrentUri } from '../lib/downloads.js'
import { formatBytes } from '../lib/format.js'
import { useCore } from '../state/core.js'
import { Icon } from './icons.js'
import { Modal } from './modal.js'

/** What the add dialog starts from: text typed or pasted, or a .torrent file picked or dropped. */
export type AddSource = { kind: 'text'; text: string } | { kind: 'file'; file: File }

type Metainfo = TorrentInfo['metainfo']

type InfoState =
  | { kind: 'idle' }
  | { kind: 'loading' }
  | { kind: 'ready'; metainfo: Metainfo }
  | { kind: 'failed'; message: string }

const HOP_LABELS = ['0 hops – direct, not anonymous', '1 hop', '2 hops', '3 hops – most anonymous']

// Torrent files above this size are refused before upload: real ones are a few MiB at most, and the base64 form
// body must stay below the core's 8 MiB body limit.
const MAX_TORRENT_BYTES = 5 * 1024 * 1024

function base64Url(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * Hands a .torrent file to the core so the REST API can address it as a `file:` URI (browsers do not reveal
 * local paths). Returns that URI.
 */
async function uploadTorrent(api: ReturnType<typeof useCore>['api'], file: File): Promise<string> {
  if (file.size > MAX_TORRENT_BYTES) throw new Error(`${file.name} is too large to be a .torrent file`)
  try {
    // base64url keeps the form body free of percent-escapes
    const torrent = base64Url(new Uint8Array(await file.arrayBuffer()))
    const body = await api.put<{ uri: string }>('/ui/upload', { torrent })
    return body.uri
  } catch (err) {
    if (isStatus(err, 404, 405)) {
      throw new Error(
        'This core cannot receive .torrent files from the browser; enter the file’s path instead.',
      )
    }
    throw err
  }
}

/**
 * The add-torrent dialog: resolves the source to a URI, shows the torrent's files (GET /torrentinfo) to choose
 * from, the anonymity hops and the destination, then starts it with PUT /downloads.
 */
export function AddTorrentDialog({
  source,
  onClose,
  onAdded,
}: {
  source: AddSource | undefined
  onClose(): void
  onAdded(infohash: string, name: string): void
}) {
  const { api, offers } = useCore()
  const [text, setText] = useState(source?.kind === 'text' ? source.text : '')
  const [uri, setUri] = useState<string>()
  const [fileName, setFileName] = useState<string>()
  const [info, setInfo] = useState<InfoState>({ kind: 'idle' })
  const [selected, setSelected] = useState<boolean[]>([])
  const [hops, setHops] = useState(1)
  const [safeSeeding, setSafeSeeding] = useState(true)
  const [destination, setDestination] = useState('')
  const [submitting, setSubmitting] = useState(false)
  const [error, setError] = useState('')
  const fileInput = useRef<HTMLInputElement>(null)
  // Fields the user changed before the settings arrived keep the user's choice.
  const touched = useRef({ hops: false, safeSeeding: false, destination: false })

  // Defaults come from the settings tree: download folder and anonymity.
  useEffect(() => {
    api.get<SettingsResponse>('/settings').then(
      ({ settings }) => {
        const defaults = settings.download_defaults ?? {}
        const anonymous = defaults.anonymity_enabled !== false
        const n = Number(defaults.number_hops)
        if (!touched.current.hops) setHops(anonymous ? (Number.isInteger(n) && n >= 0 && n <= 3 ? n : 1) : 0)
        if (!touched.current.safeSeeding) setSafeSeeding(defaults.safeseeding_enabled !== false)
        if (!touched.current.destination && typeof defaults.saveas === 'string')
          setDestination(defaults.saveas)
      },
      () => {},
    )
  }, [api])

  const resolveFile = async (file: File) => {
    setFileName(file.name)
    setError('')
    setInfo({ kind: 'loading' })
    try {
      setUri(await uploadTorrent(api, file))
    } catch (err) {
      setInfo({ kind: 'idle' })
      setError(err instanceof Error ? err.message : String(err))
    }
  }

  const sourceRef = useRef(source)
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs once, for the source the dialog opened with
  useEffect(() => {
    const initial = sourceRef.current
    if (initial?.kind === 'file') void resolveFile(initial.file)
    else if (initial?.kind === 'text' && initial.text !== '') setUri(toTorrentUri(initial.text))
  }, [])

  // Metainfo for the chosen URI; magnets may take up to the core's 20 s metadata timeout. A magnet's metadata is
  // fetched with the chosen hops, so an anonymous download is not previewed directly.
  const canReadInfo = offers('/torrentinfo') !== 'no'
  const canAdd = offers('/downloads') !== 'no'
  useEffect(() => {
    if (!uri) return
    if (!canReadInfo) {
      setInfo({ kind: 'failed', message: 'This core cannot read torrent information yet.' })
      return
    }
    const controller = new AbortController()
    setInfo({ kind: 'loading' })
    api.get<TorrentInfo>('/torrentinfo', { uri, hops }, controller.signal).then(
      (body) => {
        const metainfo = body?.metainfo
        if (!metainfo?.info) {
          setInfo({ kind: 'failed', message: 'The core returned no torrent information.' })
          return
        }
        setInfo({ kind: 'ready', metainfo })
        setSelected(torrentFiles(metainfo.info).map(() => true))
      },
      (err: unknown) => {
        if (controller.signal.aborted) return
        const message = isStatus(err, 408)
          ? 'No peer sent the torrent’s metadata in time. You can still add it; files can be chosen later.'
          : isStatus(err, 404)
            ? 'This core cannot read torrent information yet.'
            : err instanceof Error
              ? err.message
              : errorText(err, 'torrent information failed')
        setInfo({ kind: 'failed', message })
      },
    )
    return () => controller.abort()
  }, [api, uri, canReadInfo, hops])

  const files = useMemo(() => (info.kind === 'ready' ? torrentFiles(info.metainfo.info) : []), [info])
  const selectedSize = files.reduce((sum, f, i) => sum + (selected[i] ? f.size : 0), 0)
  const selectedCount = selected.filter(Boolean).length
  const exists = info.kind === 'ready' && info.metainfo.download_exists === true
  const name =
    info.kind === 'ready'
      ? String(info.metainfo.info.name ?? fileName ?? 'torrent')
      : (fileName ?? text.trim())

  const choose = () => {
    const next = toTorrentUri(text)
    setError(
      next ? '' : 'Enter a magnet link, an http(s) URL of a .torrent file, or the path of a .torrent file.',
    )
    if (next && next !== uri) {
      setFileName(undefined)
      setUri(next)
    }
  }

  const submit = async () => {
    if (!uri) return
    if (files.length > 0 && selectedCount === 0) {
      setError('Choose at least one file.')
      return
    }
    setSubmitting(true)
    setError('')
    try {
      const selectedFiles =
        files.length > 0 && selectedCount < files.length
          ? files.filter((_, i) => selected[i]).map((f) => f.path)
          : []
      const body = await api.put<{ started: boolean; infohash: string }>('/downloads', {
        uri,
        anon_hops: hops,
        safe_seeding: hops > 0 || safeSeeding ? 1 : 0,
        destination: destination.trim() || undefined,
        'selected_files[]': selectedFiles.length > 0 ? selectedFiles : undefined,
      })
      onAdded(body.infohash, name)
    } catch (err) {
      setError(
        isStatus(err, 404)
          ? 'Downloads are not available in this core yet.'
          : err instanceof Error
            ? err.message
            : String(err),
      )
    } finally {
      setSubmitting(false)
    }
  }

  return (
    <Modal
      title="Add torrent"
      onClose={onClose}
      size="large"
      testId="add-dialog"
      footer={
        <>
          <span className="muted">
            {files.length > 0 && `${selectedCount} of ${files.length} files · ${formatBytes(selectedSize)}`}
          </span>
          <div className="spacer" />
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="button primary"
            disabled={
              !canAdd || !uri || submitting || (info.kind === 'loading' && !uri.startsWith('magnet:'))
            }
            onClick={() => void submit()}
            data-testid="add-confirm"
          >
            {submitting ? 'Adding…' : info.kind === 'ready' ? 'Download' : 'Add without choosing files'}
          </button>
        </>
      }
    >
      <form
        className="add-source"
        onSubmit={(event) => {
          event.preventDefault()
          choose()
        }}
      >
        <label className="field grow">
          <span className="field-label">Magnet link, torrent URL or path of a .torrent file</span>
          <input
            type="text"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="magnet:?xt=urn:btih:…   https://…/file.torrent   /home/me/file.torrent"
            spellCheck={false}
            data-autofocus={source?.kind !== 'file' ? '' : undefined}
            data-testid="add-uri"
          />
        </label>
        <button type="submit" className="button">
          Show files
        </button>
        <button type="button" className="button" onClick={() => fileInput.current?.click()}>
          <Icon name="file" size={16} /> Choose file…
        </button>
        <input
          ref={fileInput}
          type="file"
          accept=".torrent,application/x-bittorrent"
          hidden
          data-testid="add-file"
          onChange={(e) => {
            const file = e.target.files?.[0]
            if (file) void resolveFile(file)
            e.target.value = ''
          }}
        />
      </form>

      {!canAdd && (
        <p className="notice notice-warn" data-testid="add-unavailable">
          Downloads are not available in this core yet: torrents can be inspected but not started.
        </p>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}

      <section className="add-info" aria-live="polite">
        {info.kind === 'idle' && !fileName && (
          <div className="drop-hint">
            <Icon name="download" size={28} />
            <p>Paste a link above, or drop a .torrent file anywhere on the page.</p>
          </div>
        )}
        {info.kind === 'loading' && (
          <div className="loading-line">
            <span className="spinner" aria-hidden="true" />
            {uri?.startsWith('magnet:') ? 'Fetching metadata from the swarm…' : 'Reading torrent…'}
          </div>
        )}
        {info.kind === 'failed' && <p className="notice notice-warn">{info.message}</p>}
        {info.kind === 'ready' && (
          <>
            <div className="torrent-summary">
              <strong data-testid="add-name">{name}</strong>
              <span className="muted">
                {files.length} {files.length === 1 ? 'file' : 'files'} ·{' '}
                {formatBytes(files.reduce((s, f) => s + f.size, 0))}
              </span>
            </div>
            {exists && <p className="notice notice-info">This torrent is already in your downloads.</p>}
            <FileChooser files={files} selected={selected} onChange={setSelected} />
          </>
        )}
      </section>

      <section className="add-options">
        <label className="field">
          <span className="field-label">Anonymity</span>
          <select
            value={hops}
            onChange={(e) => {
              touched.current.hops = true
              setHops(Number(e.target.value))
            }}
            data-testid="add-hops"
          >
            {HOP_LABELS.map((label, n) => (
              <option key={label} value={n}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label className="field grow">
          <span className="field-label">Save to</span>
          <input
            type="text"
            value={destination}
            onChange={(e) => {
              touched.current.destination = true
              setDestination(e.target.value)
            }}
            placeholder="Default download folder"
            spellCheck={false}
          />
        </label>
        <label className="check">
          <input
            type="checkbox"
            checked={hops > 0 || safeSeeding}
            disabled={hops > 0}
            onChange={(e) => {
              touched.current.safeSeeding = true
              setSafeSeeding(e.target.checked)
            }}
          />
          <span>Seed anonymously{hops > 0 ? ' (required for anonymous downloads)' : ''}</span>
        </label>
      </section>
    </Modal>
  )
}

function FileChooser({
  files,
  selected,
  onChange,
}: {
  files: { path: string; size: number }[]
  selected: boolean[]
  onChange(next: boolean[]): void
}) {
  const all = selected.every(Boolean)
  return (
    <div className="file-chooser">
      <div className="file-chooser-head">
        <label className="check">
          <input
            type="checkbox"
            checked={all}
            ref={(el) => {
              if (el) el.indeterminate = !all && selected.some(Boolean)
            }}
            onChange={() => onChange(files.map(() => !all))}
          />
          <span>Name</span>
        </label>
        <span>Size</span>
      </div>
      <ul className="file-list" data-testid="add-files">
        {files.map((f, i) => (
          <li key={f.path}>
            <label className="check">
              <input
                type="checkbox"
                checked={selected[i] ?? true}
                onChange={(e) => onChange(selected.map((s, j) => (j === i ? e.target.checked : s)))}
              />
              <span className="file-path" title={f.path}>
                {f.path}
              </span>
            </label>
            <span className="muted num">{formatBytes(f.size)}</span>
          </li>
        ))}
      </ul>
    </div>
  )
}
