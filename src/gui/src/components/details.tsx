import { useState } from 'react'
import type { Download, DownloadFile } from '../api/types.js'
import { statusView } from '../lib/downloads.js'
import { formatBytes, formatEta, formatRate, formatTime } from '../lib/format.js'
import { PieceBar, ProgressBar } from './bars.js'
import { Icon } from './icons.js'

type Tab = 'overview' | 'files' | 'peers' | 'trackers'

const TABS: { tab: Tab; label: string }[] = [
  { tab: 'overview', label: 'Overview' },
  { tab: 'files', label: 'Files' },
  { tab: 'peers', label: 'Peers' },
  { tab: 'trackers', label: 'Trackers' },
]

/** Operations the details pane offers on its download. */
export interface DetailsActions {
  setFileIncluded(download: Download, file: DownloadFile, included: boolean): void
  setHops(download: Download, hops: number): void
  exportTorrent(download: Download): void
}

/** Details of one download: overview with piece bar, files with their priority, peers and trackers. */
export function DownloadDetails({
  download,
  actions,
  onClose,
}: {
  download: Download
  actions: DetailsActions
  onClose(): void
}) {
  const [tab, setTab] = useState<Tab>('overview')
  const onTabKey = (event: React.KeyboardEvent) => {
    const i = TABS.findIndex((t) => t.tab === tab)
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0
    if (step === 0) return
    event.preventDefault()
    const next = TABS[(i + step + TABS.length) % TABS.length]!
    setTab(next.tab)
    document.getElementById(`details-tab-${next.tab}`)?.focus()
  }
  return (
    <section className="details" aria-label={`Details of ${download.name}`} data-testid="details">
      <header className="details-header">
        <div role="tablist" aria-label="Download details" className="tabs" onKeyDown={onTabKey}>
          {TABS.map((t) => (
            <button
              key={t.tab}
              id={`details-tab-${t.tab}`}
              type="button"
              role="tab"
              aria-selected={tab === t.tab}
              aria-controls="details-panel"
              tabIndex={tab === t.tab ? 0 : -1}
              className="tab"
              onClick={() => setTab(t.tab)}
            >
              {t.label}
              {t.tab === 'peers' && download.peers ? (
                <span className="badge">{download.peers.length}</span>
              ) : null}
            </button>
          ))}
        </div>
        <span className="details-title" title={download.name}>
          {download.name}
        </span>
        <button type="button" className="icon-button" aria-label="Close details" onClick={onClose}>
          <Icon name="close" />
        </button>
      </header>
      <div id="details-panel" role="tabpanel" className="details-body" aria-labelledby={`details-tab-${tab}`}>
        {tab === 'overview' && <Overview download={download} actions={actions} />}
        {tab === 'files' && <Files download={download} actions={actions} />}
        {tab === 'peers' && <Peers download={download} />}
        {tab === 'trackers' && <Trackers download={download} />}
      </div>
    </section>
  )
}

function Overview({ download: d, actions }: { download: Download; actions: DetailsActions }) {
  const view = statusView(d)
  const rows: [string, React.ReactNode][] = [
    ['Status', d.error ? `${view.label}: ${d.error}` : view.label],
    ['Size', formatBytes(d.size)],
    ['Downloaded', formatBytes(d.total_down)],
    ['Uploaded', formatBytes(d.total_up)],
    ['Ratio', Number.isFinite(d.ratio) ? d.ratio.toFixed(2) : '–'],
    ['Rates', `↓ ${formatRate(d.speed_down)}  ↑ ${formatRate(d.speed_up)}`],
    ['ETA', formatEta(d.eta)],
    ['Availability', Number.isFinite(d.availability) ? d.availability.toFixed(2) : '–'],
    ['Save path', d.destination || '–'],
    ['Added', formatTime(d.time_added)],
    ['Infohash', <code key="ih">{d.infohash}</code>],
  ]
  return (
    <div className="overview">
      <div className="overview-pieces">
        <span className="field-label">Pieces</span>
        {typeof d.pieces === 'string' && d.total_pieces > 0 ? (
          <PieceBar pieces={d.pieces} total={d.total_pieces} />
        ) : (
          <ProgressBar value={d.progress} tone={view.tone} label="Progress" />
        )}
      </div>
      <dl className="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <div className="row wrap">
        <label className="field inline">
          <span className="field-label">Anonymity hops</span>
          <select
            value={d.hops}
            onChange={(e) => actions.setHops(d, Number(e.target.value))}
            data-testid="details-hops"
          >
            {[0, 1, 2, 3].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <span className="muted small">
          {d.hops === 0
            ? 'Direct: not anonymous'
            : d.safe_seeding
              ? 'Seeds anonymously'
              : 'Seeds directly once finished'}
        </span>
        <div className="spacer" />
        <button type="button" className="button" onClick={() => actions.exportTorrent(d)}>
          <Icon name="export" size={16} /> Export .torrent
        </button>
      </div>
    </div>
  )
}

function Files({ download: d, actions }: { download: Download; actions: DetailsActions }) {
  if (!d.files) return <p className="muted">Loading files…</p>
  if (d.files.length === 0)
    return <p className="muted">The file list is known once the metadata has arrived.</p>
  return (
    <table className="table compact">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col" className="num">
            Size
          </th>
          <th scope="col">Progress</th>
          <th scope="col">Priority</th>
        </tr>
      </thead>
      <tbody>
        {d.files.map((f) => (
          <tr key={f.index}>
            <td className="ellipsis" title={f.name}>
              {f.name}
            </td>
            <td className="num">{formatBytes(f.size)}</td>
            <td>
              <ProgressBar
                value={f.progress}
                tone={f.included ? 'active' : 'paused'}
                label={`Progress of ${f.name}`}
              />
            </td>
            <td>
              <select
                aria-label={`Priority of ${f.name}`}
                value={f.included ? 'normal' : 'skip'}
                onChange={(e) => actions.setFileIncluded(d, f, e.target.value === 'normal')}
              >
                <option value="normal">Normal</option>
                <option value="skip">Don’t download</option>
              </select>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

const CONNECTION_TYPES = ['TCP', 'uTP']

function peerFlags(p: NonNullable<Download['peers']>[number]): string {
  const flags: string[] = []
  if (p.dinterested && !p.dchoked) flags.push('D')
  else if (p.dinterested) flags.push('d')
  if (p.uinterested && !p.uchoked) flags.push('U')
  else if (p.uinterested) flags.push('u')
  if (p.optimistic) flags.push('O')
  if (p.snubbed) flags.push('S')
  if (p.direction === 'R') flags.push('I')
  if (p.seed) flags.push('seed')
  return flags.join(' ')
}

function Peers({ download: d }: { download: Download }) {
  if (!d.peers) return <p className="muted">Loading peers…</p>
  if (d.peers.length === 0) return <p className="muted">No connected peers.</p>
  return (
    <table className="table compact" data-testid="peers">
      <thead>
        <tr>
          <th scope="col">Address</th>
          <th scope="col">Client</th>
          <th scope="col">Flags</th>
          <th scope="col">Type</th>
          <th scope="col">Has</th>
          <th scope="col" className="num">
            Down
          </th>
          <th scope="col" className="num">
            Up
          </th>
          <th scope="col" className="num">
            Downloaded
          </th>
          <th scope="col" className="num">
            Uploaded
          </th>
        </tr>
      </thead>
      <tbody>
        {d.peers.map((p) => (
          <tr key={`${p.ip}:${p.port}:${p.id}`}>
            <td className="mono">{p.ip.includes(':') ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`}</td>
            <td>{p.extended_version || '–'}</td>
            <td
              className="mono"
              title="D/d: downloading/interested, U/u: uploading/interested, O: optimistic, S: snubbed, I: incoming"
            >
              {peerFlags(p)}
            </td>
            <td>{CONNECTION_TYPES[p.connection_type] ?? String(p.connection_type)}</td>
            <td>
              <ProgressBar value={p.completed} tone="active" label={`Pieces of ${p.ip}`} />
            </td>
            <td className="num">{formatRate(p.downrate)}</td>
            <td className="num">{formatRate(p.uprate)}</td>
            <td className="num">{formatBytes(p.dtotal)}</td>
            <td className="num">{formatBytes(p.utotal)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function Trackers({ download: d }: { download: Download }) {
  if (!d.trackers || d.trackers.length === 0) return <p className="muted">No trackers.</p>
  return (
    <table className="table compact">
      <thead>
        <tr>
          <th scope="col">URL</th>
          <th scope="col">Status</th>
          <th scope="col" className="num">
            Peers
          </th>
        </tr>
      </thead>
      <tbody>
        {d.trackers.map((t) => (
          <tr key={t.url}>
            <td className="ellipsis mono" title={t.url}>
              {t.url}
            </td>
            <td>{t.status || '–'}</td>
            <td className="num">{t.peers}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
