import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import type { Download, DownloadFile } from '../api/types.js'
import { type AddSource, AddTorrentDialog } from '../components/add-dialog.js'
import { ProgressBar } from '../components/bars.js'
import { type DetailsActions, DownloadDetails } from '../components/details.js'
import { Icon, type IconName } from '../components/icons.js'
import { Modal } from '../components/modal.js'
import { useNotify } from '../components/toasts.js'
import { type DownloadFilter, isRunning, matchesFilter, peersText, statusView } from '../lib/downloads.js'
import { formatBytes, formatEta, formatRate } from '../lib/format.js'
import { useCore } from '../state/core.js'
import { useDownloads } from '../state/downloads.js'

const FILTERS: { filter: DownloadFilter; label: string }[] = [
  { filter: 'all', label: 'All' },
  { filter: 'downloading', label: 'Downloading' },
  { filter: 'seeding', label: 'Seeding' },
  { filter: 'paused', label: 'Paused' },
  { filter: 'error', label: 'Errors' },
]

type SortKey = 'name' | 'size' | 'progress' | 'status' | 'speed_down' | 'speed_up' | 'peers' | 'eta' | 'hops'

const COLUMNS: { key: SortKey; label: string; numeric?: boolean }[] = [
  { key: 'name', label: 'Name' },
  { key: 'size', label: 'Size', numeric: true },
  { key: 'progress', label: 'Progress' },
  { key: 'status', label: 'Status' },
  { key: 'speed_down', label: 'Down', numeric: true },
  { key: 'speed_up', label: 'Up', numeric: true },
  { key: 'peers', label: 'Peers', numeric: true },
  { key: 'eta', label: 'ETA', numeric: true },
  { key: 'hops', label: 'Hops', numeric: true },
]

function sortValue(d: Download, key: SortKey): number | string {
  switch (key) {
    case 'name':
      return d.name.toLowerCase()
    case 'status':
      return statusView(d).label
    case 'peers':
      return (d.num_connected_peers || 0) + (d.num_connected_seeds || 0)
    default:
      return Number(d[key]) || 0
  }
}

/** The downloads page: live table, actions, details pane, add dialog and drag-and-drop of .torrent files. */
export function DownloadsPage() {
  const { api, state } = useCore()
  const { downloads, availability, error, refresh, setDetailed } = useDownloads()
  const notify = useNotify()
  const [filter, setFilter] = useState<DownloadFilter>('all')
  const [search, setSearch] = useState('')
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'name', desc: false })
  const [selected, setSelected] = useState<string>()
  const [addSource, setAddSource] = useState<AddSource | null>(null)
  const [removing, setRemoving] = useState<Download>()
  const [dragging, setDragging] = useState(false)
  const rowRefs = useRef(new Map<string, HTMLTableRowElement>())

  const visible = useMemo(() => {
    const needle = search.trim().toLowerCase()
    const rows = downloads.filter(
      (d) => matchesFilter(d, filter) && (!needle || d.name.toLowerCase().includes(needle)),
    )
    rows.sort((a, b) => {
      const x = sortValue(a, sort.key)
      const y = sortValue(b, sort.key)
      const order = x < y ? -1 : x > y ? 1 : 0
      return sort.desc ? -order : order
    })
    return rows
  }, [downloads, filter, search, sort])

  const current = downloads.find((d) => d.infohash === selected)
  useEffect(() => {
    setDetailed(current !== undefined)
    return () => setDetailed(false)
  }, [current, setDetailed])

  const act = useCallback(
    async (what: string, run: () => Promise<unknown>) => {
      try {
        await run()
        refresh()
      } catch (err) {
        notify('error', `${what} failed: ${err instanceof Error ? err.message : String(err)}`)
      }
    },
    [notify, refresh],
  )

  const setRunState = (d: Download, value: 'resume' | 'stop' | 'recheck') =>
    act(value === 'stop' ? 'Pause' : value === 'resume' ? 'Resume' : 'Recheck', () =>
      api.patch(`/downloads/${d.infohash}`, { state: value }),
    )

  const detailsActions: DetailsActions = {
    setFileIncluded: (d: Download, file: DownloadFile, included: boolean) => {
      const indices = (d.files ?? [])
        .filter((f) => (f.index === file.index ? included : f.included))
        .map((f) => String(f.index))
      void act('Changing the file selection', () =>
        api.patch(`/downloads/${d.infohash}`, { 'selected_files[]': indices }),
      )
    },
    setHops: (d: Download, hops: number) =>
      void act('Changing the anonymity hops', () =>
        api.patch(`/downloads/${d.infohash}`, { anon_hops: hops }),
      ),
    exportTorrent: (d: Download) =>
      void act('Export', async () => {
        const blob = await api.blob(`/downloads/${d.infohash}/torrent`)
        const link = document.createElement('a')
        link.href = URL.createObjectURL(blob)
        link.download = `${d.name || d.infohash}.torrent`
        link.click()
        setTimeout(() => URL.revokeObjectURL(link.href), 10_000)
      }),
  }

  const onTableKey = (event: React.KeyboardEvent) => {
    if (visible.length === 0) return
    const i = visible.findIndex((d) => d.infohash === selected)
    let next: number | undefined
    if (event.key === 'ArrowDown') next = Math.min(visible.length - 1, i + 1)
    else if (event.key === 'ArrowUp') next = Math.max(0, i - 1)
    else if (event.key === 'Home') next = 0
    else if (event.key === 'End') next = visible.length - 1
    else if (event.key === 'Delete' && current) {
      event.preventDefault()
      setRemoving(current)
      return
    } else if (event.key === 'Escape' && current) {
      setSelected(undefined)
      return
    }
    if (next === undefined) return
    event.preventDefault()
    const target = visible[next]
    if (target) {
      setSelected(target.infohash)
      rowRefs.current.get(target.infohash)?.focus()
    }
  }

  // Dropping a .torrent anywhere on the page opens the add dialog with it.
  useEffect(() => {
    let depth = 0
    const hasFiles = (e: DragEvent) => e.dataTransfer?.types.includes('Files') ?? false
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return
      depth++
      setDragging(true)
    }
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return
      depth = Math.max(0, depth - 1)
      if (depth === 0) setDragging(false)
    }
    const over = (e: DragEvent) => {
      if (hasFiles(e)) e.preventDefault()
    }
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return
      e.preventDefault()
      depth = 0
      setDragging(false)
      const file = e.dataTransfer?.files[0]
      if (file) setAddSource({ kind: 'file', file })
    }
    window.addEventListener('dragenter', enter)
    window.addEventListener('dragleave', leave)
    window.addEventListener('dragover', over)
    window.addEventListener('drop', drop)
    return () => {
      window.removeEventListener('dragenter', enter)
      window.removeEventListener('dragleave', leave)
      window.removeEventListener('dragover', over)
      window.removeEventListener('drop', drop)
    }
  }, [])

  // Pasting a magnet link or URL on the page (outside a text field) opens the add dialog with it.
  useEffect(() => {
    const paste = (e: ClipboardEvent) => {
      const target = e.target as HTMLElement | null
      if (target?.closest('input, textarea, select, dialog')) return
      const text = e.clipboardData?.getData('text') ?? ''
      if (/^(magnet:\?|https?:\/\/)/i.test(text.trim())) setAddSource({ kind: 'text', text: text.trim() })
    }
    window.addEventListener('paste', paste)
    return () => window.removeEventListener('paste', paste)
  }, [])

  const started = state?.state === 'STARTED'
  const canAct = availability === 'ok'
  const toolbarActions: {
    label: string
    icon: IconName
    testId: string
    danger?: boolean
    enabled(d: Download): boolean
    run(d: Download): void
  }[] = [
    {
      label: 'Resume',
      icon: 'play',
      testId: 'action-resume',
      enabled: (d) => !isRunning(d),
      run: (d) => void setRunState(d, 'resume'),
    },
    {
      label: 'Pause',
      icon: 'pause',
      testId: 'action-pause',
      enabled: isRunning,
      run: (d) => void setRunState(d, 'stop'),
    },
    {
      label: 'Recheck',
      icon: 'recheck',
      testId: 'action-recheck',
      enabled: () => true,
      run: (d) => void setRunState(d, 'recheck'),
    },
    {
      label: 'Remove',
      icon: 'trash',
      testId: 'action-remove',
      danger: true,
      enabled: () => true,
      run: (d) => setRemoving(d),
    },
  ]

  return (
    <div className="downloads-page">
      <div className="page-header">
        <h1>Downloads</h1>
        <fieldset className="filters" aria-label="Filter downloads">
          {FILTERS.map((f) => {
            const count = downloads.filter((d) => matchesFilter(d, f.filter)).length
            return (
              <button
                key={f.filter}
                type="button"
                className="chip"
                aria-pressed={filter === f.filter}
                onClick={() => setFilter(f.filter)}
              >
                {f.label}
                {canAct && <span className="chip-count">{count}</span>}
              </button>
            )
          })}
        </fieldset>
        <div className="spacer" />
        <label className="search">
          <Icon name="search" size={16} />
          <input
            type="search"
            placeholder="Filter by name"
            aria-label="Filter by name"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
        </label>
        <button
          type="button"
          className="button primary"
          onClick={() => setAddSource({ kind: 'text', text: '' })}
          data-testid="add-button"
        >
          <Icon name="plus" size={16} /> Add torrent
        </button>
      </div>

      <div className="toolbar" role="toolbar" aria-label="Download actions">
        {toolbarActions.map((action) => (
          <button
            key={action.testId}
            type="button"
            className={`button ghost${action.danger ? ' danger' : ''}`}
            disabled={!current || !action.enabled(current)}
            onClick={() => current && action.run(current)}
            data-testid={action.testId}
          >
            <Icon name={action.icon} size={16} /> {action.label}
          </button>
        ))}
      </div>

      <div className="table-area">
        {!started ? (
          <EmptyState
            title="The core is not running yet"
            text="Downloads appear once the core has started."
          />
        ) : availability === 'absent' ? (
          <EmptyState
            testId="downloads-unavailable"
            icon="alert"
            title="Downloads are not available in this core yet"
            text="The core answered GET /downloads with 404 Not Found: it runs without a download engine. Settings, status and debugging work as usual."
          />
        ) : availability === 'error' ? (
          <EmptyState icon="alert" title="Could not read the downloads" text={error} />
        ) : availability === 'loading' ? (
          <EmptyState title="Loading downloads…" text="" />
        ) : downloads.length === 0 ? (
          <EmptyState
            testId="downloads-empty"
            icon="download"
            title="No downloads yet"
            text="Add a magnet link, a torrent URL or a .torrent file — or drop a .torrent file anywhere on this page."
          />
        ) : (
          <table className="table downloads-table" aria-label="Downloads" data-testid="downloads-table">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th
                    key={c.key}
                    scope="col"
                    className={c.numeric ? 'num' : undefined}
                    aria-sort={sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : undefined}
                  >
                    <button
                      type="button"
                      className="sort-button"
                      onClick={() =>
                        setSort((s) => ({ key: c.key, desc: s.key === c.key ? !s.desc : c.numeric === true }))
                      }
                    >
                      {c.label}
                      {sort.key === c.key && <span aria-hidden="true">{sort.desc ? ' ▾' : ' ▴'}</span>}
                    </button>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody onKeyDown={onTableKey}>
              {visible.map((d, i) => {
                const view = statusView(d)
                const isSelected = d.infohash === selected
                const focusable = isSelected || (!current && i === 0)
                return (
                  <tr
                    key={d.infohash}
                    ref={(el) => {
                      if (el) rowRefs.current.set(d.infohash, el)
                      else rowRefs.current.delete(d.infohash)
                    }}
                    tabIndex={focusable ? 0 : -1}
                    aria-selected={isSelected}
                    className={isSelected ? 'selected' : undefined}
                    data-infohash={d.infohash}
                    data-status={d.status}
                    onClick={() => setSelected(d.infohash)}
                    onFocus={() => setSelected(d.infohash)}
                  >
                    <td className="name-cell" title={d.name}>
                      <span className={`status-dot tone-${view.tone}`} aria-hidden="true" />
                      <span className="ellipsis">{d.name || d.infohash}</span>
                    </td>
                    <td className="num">{formatBytes(d.size)}</td>
                    <td className="progress-cell">
                      <ProgressBar value={d.progress} tone={view.tone} label={`Progress of ${d.name}`} />
                    </td>
                    <td>
                      <span className={`status-text tone-${view.tone}`} title={d.error || undefined}>
                        {view.label}
                      </span>
                    </td>
                    <td className="num">{formatRate(d.speed_down)}</td>
                    <td className="num">{formatRate(d.speed_up)}</td>
                    <td className="num">{peersText(d)}</td>
                    <td className="num">{d.status === 'DLSTATUS_DOWNLOADING' ? formatEta(d.eta) : '–'}</td>
                    <td className="num">
                      {d.hops > 0 ? (
                        <span className="hops" title={`${d.hops} anonymity hops`}>
                          <Icon name="shield" size={14} /> {d.hops}
                        </span>
                      ) : (
                        <span className="muted">0</span>
                      )}
                    </td>
                  </tr>
                )
              })}
              {visible.length === 0 && (
                <tr>
                  <td colSpan={COLUMNS.length} className="muted center">
                    No download matches this filter.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        )}
      </div>

      {current && canAct && (
        <DownloadDetails download={current} actions={detailsActions} onClose={() => setSelected(undefined)} />
      )}

      {dragging && (
        <div className="drop-overlay" aria-hidden="true">
          <Icon name="download" size={40} />
          <p>Drop a .torrent file to add it</p>
        </div>
      )}

      {addSource && (
        <AddTorrentDialog
          source={addSource}
          onClose={() => setAddSource(null)}
          onAdded={(infohash, name) => {
            setAddSource(null)
            notify('success', `Added ${name}`)
            setSelected(infohash)
            refresh()
          }}
        />
      )}

      {removing && (
        <RemoveDialog
          download={removing}
          onClose={() => setRemoving(undefined)}
          onRemove={(removeData) => {
            const d = removing
            setRemoving(undefined)
            if (selected === d.infohash) setSelected(undefined)
            void act('Remove', () =>
              api.delete(`/downloads/${d.infohash}`, { remove_data: removeData ? 1 : 0 }),
            )
          }}
        />
      )}
    </div>
  )
}

function RemoveDialog({
  download,
  onClose,
  onRemove,
}: {
  download: Download
  onClose(): void
  onRemove(removeData: boolean): void
}) {
  return (
    <Modal
      title="Remove download"
      onClose={onClose}
      size="small"
      testId="remove-dialog"
      footer={
        <>
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="button" onClick={() => onRemove(false)} data-testid="remove-keep">
            Remove, keep files
          </button>
          <button
            type="button"
            className="button danger-solid"
            onClick={() => onRemove(true)}
            data-testid="remove-data"
          >
            Remove with data
          </button>
        </>
      }
    >
      <p>
        Remove <strong>{download.name || download.infohash}</strong> from your downloads? “Remove with data”
        also deletes its {formatBytes(download.size)} of files from{' '}
        <code>{download.destination || 'the download folder'}</code>.
      </p>
    </Modal>
  )
}

function EmptyState({
  title,
  text,
  icon,
  testId,
}: {
  title: string
  text: string
  icon?: 'alert' | 'download'
  testId?: string
}) {
  return (
    <div className="empty" data-testid={testId}>
      {icon && <Icon name={icon} size={36} />}
      <h2>{title}</h2>
      {text && <p>{text}</p>}
    </div>
  )
}
