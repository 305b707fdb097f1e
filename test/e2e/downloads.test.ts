import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LibtorrentPeer } from '../support/libtorrent.js'
import { type GuiBrowser, openBrowser } from './support/browser.js'
import { type RunningCore, startCore } from './support/core.js'
import { seederTestsRun, seedWithLibtorrent } from './support/seeder.js'

const FILES = { 'album/one.bin': 3 * 1024 * 1024 + 123, 'album/two.bin': 1024 * 1024 + 7 }

let work: string
let seeder: LibtorrentPeer | undefined
let core: RunningCore | undefined
let browser: GuiBrowser | undefined
let contents: Map<string, Buffer>
let magnet: string
let infoHash: string

beforeAll(async () => {
  if (!seederTestsRun) return
  work = mkdtempSync(join(tmpdir(), 'tribler-e2e-dl-'))
  ;({ seeder, contents, infoHash, magnet } = await seedWithLibtorrent(work, '127.0.0.61', 'album', FILES))
  core = await startCore()
})

afterAll(async () => {
  await browser?.close()
  await core?.dispose()
  await seeder?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
})

function row(page: Page, status?: string) {
  return page.locator(`tr[data-infohash="${infoHash}"]${status ? `[data-status="${status}"]` : ''}`)
}

describe.runIf(seederTestsRun)('downloads page with a real libtorrent seeder', () => {
  it('adds a magnet through the dialog, reaches 100% and seeding, pauses, resumes and removes it with its data', async () => {
    const running = core as RunningCore
    browser = await openBrowser()
    const { page, errors, screenshot } = browser
    await page.goto(`${running.url}/ui/`)
    await page.waitForSelector('[data-testid=core-state][data-state=STARTED]')
    await page.getByTestId('downloads-empty').waitFor()

    // The dialog fetches the metadata from the seeder named in the magnet and lists the torrent's files. Anonymous
    // downloads (and their metadata) need circuits; this one goes direct to the loopback seeder.
    await page.getByTestId('add-button').click()
    const dialog = page.getByTestId('add-dialog')
    await dialog.waitFor()
    await page.getByTestId('add-uri').fill(magnet)
    await page.keyboard.press('Enter')
    await page.getByTestId('add-hops').selectOption('0')
    await expect.poll(() => page.getByTestId('add-name').textContent(), { timeout: 60_000 }).toBe('album')
    await expect(page.getByTestId('add-files').locator('li').count()).resolves.toBe(2)
    const destination = join(work, 'downloads')
    await dialog.getByLabel('Save to').fill(destination)
    // seeding in the open is a choice: with "Seed anonymously" on, a direct download moves to circuits once done
    await dialog.getByLabel('Seed anonymously').uncheck()
    await screenshot('add-dialog-magnet')
    await page.getByTestId('add-confirm').click()
    await dialog.waitFor({ state: 'detached' })

    // The row fills up to 100% and turns to seeding.
    await row(page).waitFor()
    await row(page, 'DLSTATUS_SEEDING').waitFor({ timeout: 90_000 })
    await expect(row(page).getByRole('progressbar').getAttribute('aria-valuenow')).resolves.toBe('100')
    for (const [relative, data] of contents) {
      expect(readFileSync(join(destination, relative)).equals(data)).toBe(true)
    }
    await row(page).click()
    await page.getByTestId('details').waitFor()
    await screenshot('downloads-seeding')

    await page.getByTestId('action-pause').click()
    await row(page, 'DLSTATUS_STOPPED').waitFor({ timeout: 30_000 })
    await screenshot('downloads-paused')
    await page.getByTestId('action-resume').click()
    await row(page, 'DLSTATUS_SEEDING').waitFor({ timeout: 60_000 })

    await page.getByTestId('action-remove').click()
    await page.getByTestId('remove-dialog').waitFor()
    await page.getByTestId('remove-data').click()
    await row(page).waitFor({ state: 'detached', timeout: 30_000 })
    await page.getByTestId('downloads-empty').waitFor()
    await expect
      .poll(() => existsSync(join(destination, 'album', 'one.bin')), { timeout: 10_000 })
      .toBe(false)
    expect(errors).toEqual([])
  })
})
