import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LibtorrentPeer } from '../support/libtorrent.js'
import { freePort as freeUdpPort } from '../support/tracker-servers.js'
import { type GuiBrowser, openBrowser } from './support/browser.js'
import { type RunningCore, startCore } from './support/core.js'
import { seederTestsRun, seedWithLibtorrent } from './support/seeder.js'

const EXIT_HOST = '127.0.0.96'
const CLIENT_HOST = '127.0.0.97'

let work: string
let seeder: LibtorrentPeer | undefined
let exit: RunningCore | undefined
let client: RunningCore | undefined
let browser: GuiBrowser | undefined
let contents: Map<string, Buffer>
let magnet: string
let infoHash: string

beforeAll(async () => {
  if (!seederTestsRun) return
  work = mkdtempSync(join(tmpdir(), 'tribler-e2e-anon-'))
  ;({ seeder, contents, infoHash, magnet } = await seedWithLibtorrent(work, '127.0.0.95', 'clip.bin', {
    'clip.bin': 2 * 1024 * 1024 + 321,
  }))
  // A second core on its own address is the exit; the GUI's core finds it through its bootstrap setting.
  const exitPort = await freeUdpPort(EXIT_HOST)
  exit = await startCore({
    settings: {
      ipv8: { address: EXIT_HOST },
      dispersy: { port: exitPort },
      tunnel_community: { exitnode_enabled: true },
    },
  })
  client = await startCore({
    settings: {
      ipv8: { address: CLIENT_HOST, bootstrap_override: `${EXIT_HOST}:${exitPort}` },
      dispersy: { port: await freeUdpPort(CLIENT_HOST) },
    },
  })
})

afterAll(async () => {
  await browser?.close()
  await client?.dispose()
  await exit?.dispose()
  await seeder?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
})

describe.runIf(seederTestsRun)('an anonymous download in the GUI', () => {
  it('downloads through a 1-hop circuit, shows the hops in the table and the circuit on the debug page', async () => {
    const core = client as RunningCore
    browser = await openBrowser()
    const { page, errors, screenshot } = browser
    await page.goto(`${core.url}/ui/`)
    await page.waitForSelector('[data-testid=core-state][data-state=STARTED]')

    await page.getByTestId('add-button').click()
    const dialog = page.getByTestId('add-dialog')
    await dialog.waitFor()
    await page.getByTestId('add-uri').fill(magnet)
    await page.keyboard.press('Enter')
    // The preview uses the dialog's hops (the default, 1): the metadata comes through a circuit, as the download.
    await expect.poll(() => page.getByTestId('add-name').textContent(), { timeout: 60_000 }).toBe('clip.bin')
    await page.getByTestId('add-hops').selectOption('1')
    const destination = join(work, 'downloads')
    await dialog.getByLabel('Save to').fill(destination)
    await page.getByTestId('add-confirm').click()
    await dialog.waitFor({ state: 'detached' })

    const row = page.locator(`tr[data-infohash="${infoHash}"]`)
    await row.waitFor()
    await page
      .locator(`tr[data-infohash="${infoHash}"][data-status="DLSTATUS_SEEDING"]`)
      .waitFor({ timeout: 120_000 })
    await expect(row.locator('.hops').textContent()).resolves.toContain('1')
    expect(readFileSync(join(destination, 'clip.bin')).equals(contents.get('clip.bin') as Buffer)).toBe(true)
    await screenshot('downloads-anonymous')

    await page.goto(`${core.url}/ui/#/debug`)
    const circuit = page.getByTestId('circuits').locator('tbody tr').first()
    await circuit.waitFor({ timeout: 30_000 })
    await expect(circuit.locator('td').nth(2).textContent()).resolves.toBe('1 / 1')
    await screenshot('debug-circuits')
    expect(errors).toEqual([])
  })
})
