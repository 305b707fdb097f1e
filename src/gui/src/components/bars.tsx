import { useEffect, useRef } from 'react'
import { decodeBitfield, pieceBuckets } from '../lib/bitfield.js'
import { formatPercent } from '../lib/format.js'

/** A thin progress bar with its percentage, coloured by `tone`. */
export function ProgressBar({
  value,
  tone = 'active',
  label,
}: {
  value: number
  tone?: 'active' | 'done' | 'paused' | 'error' | 'checking'
  label?: string
}) {
  const pct = Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0))
  return (
    <div
      className={`progress progress-${tone}`}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(pct * 1000) / 10}
      aria-label={label}
    >
      <div className="progress-track">
        <div className="progress-fill" style={{ width: `${pct * 100}%` }} />
      </div>
      <span className="progress-text">{formatPercent(pct)}</span>
    </div>
  )
}

/**
 * The pieces of a download drawn from the base64 bitfield of `get_pieces=1`: full colour where every piece of a
 * column is present, lighter where some are.
 */
export function PieceBar({ pieces, total }: { pieces: string; total: number }) {
  const canvas = useRef<HTMLCanvasElement>(null)
  useEffect(() => {
    const el = canvas.current
    const ctx = el?.getContext('2d')
    if (!el || !ctx) return
    const width = Math.max(1, Math.floor(el.clientWidth * window.devicePixelRatio))
    const height = Math.max(1, Math.floor(el.clientHeight * window.devicePixelRatio))
    el.width = width
    el.height = height
    const have = decodeBitfield(pieces, total)
    const columns = Math.min(width, Math.max(1, total))
    const buckets = pieceBuckets(have, columns)
    const style = getComputedStyle(el)
    ctx.fillStyle = style.getPropertyValue('--piece-missing').trim() || '#ddd'
    ctx.fillRect(0, 0, width, height)
    ctx.fillStyle = style.getPropertyValue('--piece-have').trim() || '#2f7cf6'
    const columnWidth = width / columns
    buckets.forEach((fraction, i) => {
      if (fraction <= 0) return
      ctx.globalAlpha = 0.35 + 0.65 * fraction
      ctx.fillRect(Math.floor(i * columnWidth), 0, Math.ceil(columnWidth), height)
    })
    ctx.globalAlpha = 1
  }, [pieces, total])
  const have = decodeBitfield(pieces, total).filter(Boolean).length
  return (
    <div className="piece-bar">
      <canvas
        ref={canvas}
        role="img"
        aria-label={`${have} of ${total} pieces present`}
        data-testid="piece-bar"
      />
      <span className="muted">
        {have} / {total} pieces
      </span>
    </div>
  )
}
