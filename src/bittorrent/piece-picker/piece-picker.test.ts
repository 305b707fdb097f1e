import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../net/index.js'
import { BLOCKS_PER_PIECE, piecesOf, setupPicker } from './fixture.test-support.js'
import type { PiecePickerErrorCode } from './index.js'
import { Bitfield, BLOCK_SIZE, PiecePicker, PiecePickerError } from './index.js'

const WHOLE = BLOCKS_PER_PIECE

function codeOf(fn: () => unknown): PiecePickerErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof PiecePickerError) return err.code
    throw err
  }
  return undefined
}

function seed(picker: PiecePicker, name = 'seed'): string {
  picker.peerHaveAll(name)
  return name
}

describe('PiecePicker', () => {
  it('picks the rarest piece first', () => {
    const picker = setupPicker('3213')
    const peer = seed(picker)
    expect(piecesOf(picker.pickBlocks(peer, WHOLE))).toEqual([2])
    expect(piecesOf(picker.pickBlocks(peer, WHOLE))).toEqual([1])
  })

  it('asks for every block of a piece, the last one short', () => {
    const picker = setupPicker('1', '', '', '', { lastPieceBytes: 2 * BLOCK_SIZE + 100 })
    expect(picker.pickBlocks(seed(picker), 10)).toEqual([
      { piece: 0, offset: 0, length: BLOCK_SIZE },
      { piece: 0, offset: BLOCK_SIZE, length: BLOCK_SIZE },
      { piece: 0, offset: 2 * BLOCK_SIZE, length: 100 },
    ])
  })

  it('breaks ties at random', () => {
    const firsts = new Set<number>()
    for (let s = 1; s <= 40; s++) {
      const picker = setupPicker('1111111', '', '', '', { seed: s })
      firsts.add(picker.pickBlocks(seed(picker), 1)[0]!.piece)
    }
    expect(firsts.size).toBeGreaterThan(4)
  })

  it('never picks pieces we have, pieces the peer lacks, or skipped pieces', () => {
    const picker = setupPicker('1111', '*   ', '4404')
    const peer = new Bitfield(4)
    peer.set(0)
    peer.set(1)
    peer.set(2)
    picker.peerBitfield('p', peer)
    expect(piecesOf(picker.pickBlocks('p', 100))).toEqual([1])
  })

  it('picks higher priorities first whatever the availability', () => {
    const picker = setupPicker('1119', '', '1117')
    expect(piecesOf(picker.pickBlocks(seed(picker), WHOLE))).toEqual([3])
  })

  it('finishes partially downloaded pieces first', () => {
    const picker = setupPicker('3331', '', '', '0200')
    expect(picker.pickBlocks(seed(picker), 3)).toEqual([
      { piece: 1, offset: 2 * BLOCK_SIZE, length: BLOCK_SIZE },
      { piece: 1, offset: 3 * BLOCK_SIZE, length: BLOCK_SIZE },
      { piece: 3, offset: 0, length: BLOCK_SIZE },
    ])
  })

  it('follows have messages and departing peers', () => {
    const picker = setupPicker('2222')
    picker.peerHave('x', 0)
    picker.peerHave('x', 1)
    picker.peerHave('x', 3)
    expect(picker.availability(2)).toBe(2)
    const peer = seed(picker)
    expect(piecesOf(picker.pickBlocks(peer, WHOLE))).toEqual([2])
    picker.removePeer('x')
    picker.removePeer('a2')
    expect(picker.availability(0)).toBe(2)
    expect(picker.availability(3)).toBe(2)
  })

  it('counts seeds without touching every piece', () => {
    const picker = setupPicker('0120')
    picker.peerHaveAll('s1')
    picker.peerHaveAll('s2')
    expect(picker.availability(0)).toBe(2)
    expect(picker.availability(2)).toBe(4)
    picker.peerHaveNone('s2')
    expect(picker.availability(2)).toBe(3)
    picker.removePeer('s1')
    expect(picker.availability(2)).toBe(2)
  })

  it('maps file priorities to pieces, highest file wins, padding ignored', () => {
    const picker = setupPicker('11111')
    const pieceBytes = WHOLE * BLOCK_SIZE
    picker.setFilePriorities(
      [
        { offset: 0, length: pieceBytes + 10 },
        { offset: pieceBytes + 10, length: pieceBytes - 10 },
        { offset: 2 * pieceBytes, length: pieceBytes, padding: true },
        { offset: 3 * pieceBytes, length: 2 * pieceBytes },
      ],
      [0, 7, 7, 1],
    )
    expect([0, 1, 2, 3, 4].map((p) => picker.piecePriority(p))).toEqual([0, 7, 0, 1, 1])
    const order = piecesOf(picker.pickBlocks(seed(picker), 100))
    expect(order[0]).toBe(1)
    expect(order.slice(1).sort()).toEqual([3, 4])
  })

  it('downloads in order in sequential mode', () => {
    const picker = setupPicker('9919')
    picker.setSequential(true)
    expect(piecesOf(picker.pickBlocks(seed(picker), 100))).toEqual([0, 1, 2, 3])
  })

  it('downloads urgent pieces first, in the order given', () => {
    const picker = setupPicker('11111', '*    ', '', '00020')
    picker.setUrgentPieces([4, 0, 1])
    expect(piecesOf(picker.pickBlocks(seed(picker), 2 * WHOLE))).toEqual([4, 1])
  })

  it('prefers pieces the peer suggests (BEP 6)', () => {
    const picker = setupPicker('1119')
    const peer = seed(picker)
    picker.peerSuggest(peer, 3)
    expect(piecesOf(picker.pickBlocks(peer, WHOLE))).toEqual([3])
  })

  it('picks only allowed-fast pieces when asked to (BEP 6)', () => {
    const picker = setupPicker('1111')
    const peer = seed(picker)
    expect(piecesOf(picker.pickBlocks(peer, 100, { onlyPieces: [2, 3] }))).toEqual([2, 3])
  })

  it('enters endgame and cancels duplicate requests when a block arrives', () => {
    const picker = setupPicker('11')
    const first = seed(picker, 'first')
    const second = seed(picker, 'second')
    expect(picker.pickBlocks(first, 100)).toHaveLength(2 * WHOLE)
    expect(picker.inEndgame).toBe(true)
    const duplicates = picker.pickBlocks(second, 3)
    expect(duplicates.map((r) => [r.piece, r.offset])).toEqual(
      picker
        .outstandingRequests(first)
        .slice(0, 3)
        .map((r) => [r.piece, r.offset]),
    )
    const { piece, offset } = duplicates[0]!
    expect(picker.blockReceived(second, piece, offset)).toEqual({
      accepted: true,
      pieceComplete: false,
      cancel: [first],
    })
    expect(picker.outstandingRequests(first).some((r) => r.piece === piece && r.offset === offset)).toBe(
      false,
    )
    expect(picker.blockReceived(first, piece, offset).accepted).toBe(false)
    // A block is not asked from more peers than the limit.
    expect(picker.pickBlocks(seed(picker, 'third'), 100)).toHaveLength(2 * WHOLE - 3)
  })

  it('reports a complete piece, then marks it had once verified', () => {
    const picker = setupPicker('1')
    const peer = seed(picker)
    const blocks = picker.pickBlocks(peer, 100)
    const results = blocks.map((b) => picker.blockReceived(peer, b.piece, b.offset))
    expect(results.map((r) => r.pieceComplete)).toEqual([false, false, false, true])
    expect(picker.isFinished).toBe(false)
    picker.pieceVerified(0)
    expect(picker.hasPiece(0)).toBe(true)
    expect(picker.isFinished).toBe(true)
    expect(picker.pickBlocks(peer, 100)).toEqual([])
    expect(picker.isInteresting(peer)).toBe(false)
  })

  it('makes a failed piece pickable again and names who sent it', () => {
    const picker = setupPicker('11')
    picker.peerHaveAll('a')
    picker.peerHaveAll('b')
    const [b0, b1, b2, b3] = picker.pickBlocks('a', WHOLE)
    for (const block of [b0!, b1!]) picker.blockReceived('a', block.piece, block.offset)
    for (const block of [b2!, b3!]) picker.blockReceived('b', block.piece, block.offset)
    expect(picker.pieceFailed(b0!.piece).sort()).toEqual(['a', 'b'])
    expect(piecesOf(picker.pickBlocks('b', 2 * WHOLE)).sort()).toEqual([0, 1])
  })

  it('returns released requests to the pool, and untouched pieces to rarest-first order', () => {
    const picker = setupPicker('12')
    const peer = seed(picker)
    const blocks = picker.pickBlocks(peer, 2)
    picker.releaseRequest(peer, blocks[1]!.piece, blocks[1]!.offset)
    expect(picker.pickBlocks(peer, 1)).toEqual([blocks[1]])
    picker.releasePeer(peer)
    expect(picker.outstandingRequests(peer)).toEqual([])
    expect(picker.inEndgame).toBe(false)
    picker.peerHave('z', 1)
    expect(piecesOf(picker.pickBlocks(peer, WHOLE))).toEqual([0])
  })

  it('knows when a peer is interesting', () => {
    const picker = setupPicker('11', '* ')
    picker.peerHave('p', 0)
    expect(picker.isInteresting('p')).toBe(false)
    picker.peerHave('p', 1)
    expect(picker.isInteresting('p')).toBe(true)
  })

  it('rejects pieces, blocks and priorities that do not exist', () => {
    const picker = setupPicker('11')
    expect(codeOf(() => picker.peerHave('p', 2))).toBe('INVALID_PIECE')
    expect(codeOf(() => picker.blockReceived('p', 0, 5))).toBe('INVALID_BLOCK')
    expect(codeOf(() => picker.blockReceived('p', 0, WHOLE * BLOCK_SIZE))).toBe('INVALID_BLOCK')
    expect(codeOf(() => picker.setPiecePriority(0, 9 as never))).toBe('INVALID_PRIORITY')
    expect(codeOf(() => picker.peerBitfield('p', new Bitfield(3)))).toBe('INVALID_PIECE')
    expect(codeOf(() => new PiecePicker({ pieceCount: 3, pieceLength: 10, totalLength: 5 }))).toBe(
      'INVALID_LAYOUT',
    )
  })

  it('keeps its rarest-first order through random updates', () => {
    const rand = seededRandom(99)
    for (let round = 0; round < 30; round++) {
      const pieces = 40
      const picker = new PiecePicker({
        pieceCount: pieces,
        pieceLength: WHOLE * BLOCK_SIZE,
        totalLength: pieces * WHOLE * BLOCK_SIZE,
        random: rand,
      })
      const peers = Array.from({ length: 8 }, (_, i) => `p${i}`)
      for (let op = 0; op < 300; op++) {
        const peer = peers[Math.floor(rand() * peers.length)]!
        const piece = Math.floor(rand() * pieces)
        const roll = rand()
        if (roll < 0.6) picker.peerHave(peer, piece)
        else if (roll < 0.65) picker.removePeer(peer)
        else if (roll < 0.75) picker.setPiecePriority(piece, Math.floor(rand() * 8) as never)
        else if (roll < 0.8) picker.setHave(piece)
        else if (roll < 0.9) picker.pickBlocks(peer, 1 + Math.floor(rand() * 6))
        else picker.releasePeer(peer)
      }
      for (const peer of peers) picker.releasePeer(peer)
      const seedPeer = seed(picker)
      let previous = [Number.POSITIVE_INFINITY, 0]
      for (;;) {
        const picked = picker.pickBlocks(seedPeer, WHOLE)
        if (picked.length === 0) break
        const piece = picked[0]!.piece
        const rank = [picker.piecePriority(piece), -picker.availability(piece)]
        expect(rank[0]! < previous[0]! || (rank[0] === previous[0] && rank[1]! <= previous[1]!)).toBe(true)
        previous = rank
      }
    }
  })
})
