import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { encode } from '../../src/bencode/index.js'
import { type GuiBrowser, openBrowser } from './support/browser.js'
import { type RunningCore, startCore } from './support/core.js'

let core: RunningCore
let browser: GuiBrowser | undefined

beforeAll(async () => {
  core = await startCore()
})
afterAll(async () => {
  await core?.dispose()
})
afterEach(async () => {
  await browser?.close()
  browser = undefined
})

async function open(url: string, opts?: { colorScheme?: 'light' | 'dark' }): Promise<GuiBrowser> {
  browser = await openBrowser(opts)
  await browser.page.goto(url)
  return browser
}

async function coreState(page: Page): Promise<string | null> {
  return page.getByTestId('core-state').getAttribute('data-state')
}

async function waitStarted(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid=core-state][data-state=STARTED]')
}

describe('web GUI on a real core', () => {
  it('is served at /ui/ (with / redirecting there) and shows the core as STARTED', async () => {
    const { page, errors, screenshot } = await open(core.url)
    expect(new URL(page.url()).pathname).toBe('/ui/')
    await waitStarted(page)
    expect(await coreState(page)).toBe('STARTED')
    await expect(page.title()).resolves.toContain('Tribler')
    expect(core.output()).toContain(`Web GUI at ${core.url}/ui/`)
    // A fresh core has no downloads: the page says how to add one.
    await page.getByTestId('downloads-empty').waitFor()
    await screenshot('downloads-light')
    expect(errors).toEqual([])
  })

  it('changes a setting, validates input, and shows the saved value after a reload', async () => {
    const { page, errors, screenshot } = await open(`${core.url}/ui/#/settings`)
    await waitStarted(page)
    const rate = page.locator('[data-setting="libtorrent.max_download_rate"]')
    await rate.waitFor()
    await rate.fill('not a number')
    await expect(page.locator('#setting-libtorrent-max_download_rate-hint').textContent()).resolves.toBe(
      'Enter a number',
    )
    await rate.fill('512')
    const family = page.locator('[data-setting="general.family_filter"]')
    const familyBefore = await family.isChecked()
    await family.setChecked(!familyBefore)
    await screenshot('settings-edited')
    await page.getByTestId('settings-save').click()
    await page.getByText(/Settings saved \(2 changes\)/).waitFor()

    const res = await fetch(`${core.url}/settings`)
    const body = (await res.json()) as { settings: Record<string, Record<string, unknown>> }
    // The field is in KiB/s; the setting is bytes/s, as in Tribler.
    expect(body.settings.libtorrent?.max_download_rate).toBe(512 * 1024)
    expect(body.settings.general?.family_filter).toBe(!familyBefore)

    await page.reload()
    await waitStarted(page)
    await expect(page.locator('[data-setting="libtorrent.max_download_rate"]').inputValue()).resolves.toBe(
      '512',
    )
    await expect(page.locator('[data-setting="general.family_filter"]').isChecked()).resolves.toBe(
      !familyBefore,
    )
    await screenshot('settings-light')
    expect(errors).toEqual([])
  })

  it('shows the error body when the core refuses a value', async () => {
    const { page, errors } = await open(`${core.url}/ui/#/settings`)
    await waitStarted(page)
    // 70000 passes the GUI's check for this free-form field but not the core's range check.
    const port = page.locator('[data-setting="video_server.port"]')
    await port.waitFor()
    await port.fill('70000')
    await page.getByTestId('settings-save').click()
    const message = await page.getByTestId('settings-error').textContent()
    expect(message).toMatch(/65536|range|port/i)
    // The one rejected request is the only console error.
    expect(errors.filter((e) => !e.includes('status of 400'))).toEqual([])
  })

  it('switches between light, dark and system themes and remembers the choice', async () => {
    const { page, errors, screenshot } = await open(`${core.url}/ui/`, { colorScheme: 'light' })
    await waitStarted(page)
    const theme = () => page.evaluate('document.documentElement.dataset.theme')
    expect(await theme()).toBe('light')
    await page.locator('[data-theme-choice=dark]').click()
    expect(await theme()).toBe('dark')
    await page.reload()
    await waitStarted(page)
    expect(await theme()).toBe('dark')
    await page.getByTestId('downloads-empty').waitFor()
    await screenshot('downloads-dark')
    // Back to following the system, which now prefers dark.
    await page.locator('[data-theme-choice=system]').click()
    // The media-query listener runs after the emulation changes, so wait for it.
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.waitForSelector('html[data-theme=dark]', { state: 'attached' })
    await page.emulateMedia({ colorScheme: 'light' })
    await page.waitForSelector('html[data-theme=light]', { state: 'attached' })
    expect(errors).toEqual([])
  })

  it('shows the tunnel community without circuits on the debug page, and the core log', async () => {
    const { page, errors, screenshot } = await open(`${core.url}/ui/#/debug`)
    await waitStarted(page)
    // Alone on loopback, the tunnel community runs but has no peers to build circuits through.
    await page.getByTestId('circuits-empty').waitFor()
    await expect(page.getByTestId('debug-state').textContent()).resolves.toBe('STARTED')
    await page.getByText('REST API listening').waitFor()
    await screenshot('debug-light')
    expect(errors).toEqual([])
  })

  it('opens the add dialog from the keyboard, reads a dropped .torrent through the core and closes on Escape', async () => {
    const { page, errors, screenshot } = await open(`${core.url}/ui/`)
    await waitStarted(page)
    await page.getByTestId('downloads-empty').waitFor()
    await page.getByTestId('add-button').focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByTestId('add-dialog')
    await dialog.waitFor()

    const torrent = join(core.stateDir, 'sample.torrent')
    writeFileSync(
      torrent,
      encode({
        announce: 'http://127.0.0.1:1/announce',
        info: { length: 1234567, name: 'sample.bin', 'piece length': 262144, pieces: Buffer.alloc(100, 1) },
      }),
    )
    await page.getByTestId('add-file').setInputFiles(torrent)
    // The upload gives the core a file: URI, and /torrentinfo lists the torrent's one file.
    await expect(page.getByTestId('add-name').textContent()).resolves.toBe('sample.bin')
    await expect(page.getByTestId('add-files').locator('li').count()).resolves.toBe(1)
    expect(await page.getByTestId('add-unavailable').count()).toBe(0)
    await screenshot('add-dialog')
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })
    expect(errors).toEqual([])
  })
  it('keeps the anonymity the user picked when the settings arrive after the dialog opened', async () => {
    const { page, errors } = await open(`${core.url}/ui/`)
    await waitStarted(page)
    await page.getByTestId('downloads-empty').waitFor()
    // Hold the dialog's GET /settings until the user has picked 3 hops; the answer then names a folder, so the
    // test sees when the defaults were applied.
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    let held = 0
    const folder = join(core.stateDir, 'late-defaults')
    await page.route('**/settings', async (route) => {
      if (route.request().method() !== 'GET') return route.continue()
      held += 1
      await released
      const response = await route.fetch()
      const body = (await response.json()) as { settings: { download_defaults: Record<string, unknown> } }
      body.settings.download_defaults.saveas = folder
      body.settings.download_defaults.number_hops = 1
      await route.fulfill({ response, json: body })
    })
    await page.getByTestId('add-button').click()
    await page.getByTestId('add-dialog').waitFor()
    await expect.poll(() => held, { timeout: 10_000 }).toBeGreaterThan(0)
    await page.getByTestId('add-hops').selectOption('3')
    release()
    await page
      .getByPlaceholder('Default download folder')
      .and(page.locator(`[value="${folder}"]`))
      .waitFor()
    expect(await page.getByTestId('add-hops').inputValue()).toBe('3')
    expect(errors).toEqual([])
  })
})

describe('API key', () => {
  it('asks once on a 401, keeps the key in localStorage and sends it from then on', async () => {
    const keyed = await startCore({ apiKey: 'correct horse' })
    try {
      const { page, errors, screenshot } = await open(`${keyed.url}/ui/`)
      const dialog = page.getByTestId('api-key-dialog')
      await dialog.waitFor()
      await screenshot('api-key-dialog')
      await dialog.locator('input[name=api-key]').fill('wrong')
      await page.keyboard.press('Enter')
      await page.getByText('The core rejected the stored API key').waitFor()
      await dialog.locator('input[name=api-key]').fill('correct horse')
      await page.keyboard.press('Enter')
      await waitStarted(page)
      await page.getByTestId('downloads-empty').waitFor()
      expect(await page.evaluate("localStorage.getItem('tribler.apiKey')")).toBe('correct horse')

      await page.reload()
      await waitStarted(page)
      expect(await page.getByTestId('api-key-dialog').count()).toBe(0)
      // The events stream carries the key too: the debug page lists its first event.
      await page.goto(`${keyed.url}/ui/#/debug`)
      await page.reload()
      await page.getByText('events_start').waitFor()
      // Only the requests refused before a valid key was entered show up as console errors.
      expect(errors.filter((e) => !e.includes('status of 401'))).toEqual([])
    } finally {
      await keyed.dispose()
    }
  })
})

describe('connection', () => {
  it('shows a banner while the core is away and reconnects when it is back', async () => {
    const first = await startCore()
    let second: RunningCore | undefined
    try {
      const { page, errors, screenshot } = await open(`${first.url}/ui/`)
      await waitStarted(page)
      await first.stop()
      await page.waitForSelector('[data-testid=connection-banner][data-connection=lost]')
      await screenshot('connection-lost')
      second = await startCore({ port: first.port, stateDir: first.stateDir })
      await page.waitForSelector('[data-testid=connection-banner][data-connection=restored]', {
        timeout: 30_000,
      })
      await waitStarted(page)
      // While the core was down, each reconnect attempt is a refused connection; a request in flight when the core
      // stopped is reset or gets an empty response, and one that arrives while it shuts down gets the documented
      // 500 "Tribler is shutting down". Any other console error is a defect.
      expect(
        errors.filter(
          (e) =>
            !/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|Failed to fetch|status of 500/.test(
              e,
            ),
        ),
      ).toEqual([])
    } finally {
      await second?.stop()
      await first.dispose()
    }
  })
})
