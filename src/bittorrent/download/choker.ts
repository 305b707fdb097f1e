/** What the choker needs of a peer. */
export interface ChokerPeer<Id> {
  readonly id: Id
  readonly interested: boolean
  /** Payload bytes/s we receive from it (leeching) and send to it (seeding). */
  readonly downRate: number
  readonly upRate: number
  /** It has every piece, or said it only uploads: uploading to it is pointless. */
  readonly uploadOnly: boolean
}

/** Inputs of one choke round. */
export interface ChokeRound<Id> {
  readonly peers: readonly ChokerPeer<Id>[]
  /** Regular upload slots. */
  readonly slots: number
  /** We have every piece: rank by how fast peers take our data instead of how fast they give us theirs. */
  readonly seeding: boolean
  /** The optimistic unchoke, kept from the last rotation (if still interested). */
  readonly optimistic: Id | undefined
  /** Time to rotate the optimistic unchoke (every 30 s). */
  readonly rotateOptimistic: boolean
  readonly random: () => number
}

/** The peers to unchoke and which of them is the optimistic one. */
export interface ChokeDecision<Id> {
  readonly unchoke: ReadonlySet<Id>
  readonly optimistic: Id | undefined
}

/**
 * Tit-for-tat as in BEP 3 and libtorrent's rate-based choker: the `slots` interested peers that upload to us
 * fastest (or, when seeding, that we upload to fastest) are unchoked, plus one optimistic unchoke chosen at random
 * among the others and rotated every 30 s, so new peers get a chance to prove themselves.
 */
export function decideUnchokes<Id>(round: ChokeRound<Id>): ChokeDecision<Id> {
  const candidates = round.peers.filter((p) => p.interested && !p.uploadOnly)
  const ranked = [...candidates].sort((a, b) =>
    round.seeding ? b.upRate - a.upRate : b.downRate - a.downRate,
  )
  const unchoke = new Set<Id>()
  for (const peer of ranked.slice(0, Math.max(0, round.slots))) unchoke.add(peer.id)
  const rest = ranked.filter((p) => !unchoke.has(p.id))
  let optimistic = round.optimistic
  const keep = optimistic !== undefined && rest.some((p) => p.id === optimistic)
  if (round.rotateOptimistic || !keep) {
    const others = rest.filter((p) => p.id !== round.optimistic)
    const pool = others.length > 0 ? others : rest
    optimistic = pool.length === 0 ? undefined : pool[Math.floor(round.random() * pool.length)]!.id
  }
  if (optimistic !== undefined) unchoke.add(optimistic)
  return { unchoke, optimistic }
}
