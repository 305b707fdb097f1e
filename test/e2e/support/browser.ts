import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)))
/** Where screenshots go (git-ignored). */
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'e2e')

// Without the background-networking flags Chromium tries to reach Google's services; tests stay on loopback.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
]

/** A headless Chromium with a fresh profile, one page, and everything the page logged as an error. */
export interface GuiBrowser {
  context: BrowserContext
  page: Page
  /** Console errors and uncaught exceptions of the page, in order. */
  errors: string[]
  /** Saves a full-window screenshot as `test-artifacts/e2e/<name>.png`. */
  screenshot(name: string): Promise<void>
  close(): Promise<void>
}

/** Launches the system Chromium (`/usr/bin/chromium`, or `CHROMIUM_PATH`) headless with a new profile. */
export async function openBrowser(opts: { colorScheme?: 'light' | 'dark' } = {}): Promise<GuiBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'tribler-e2e-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? 'light',
  })
  const page = context.pages()[0] ?? (await context.newPage())
  const errors: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()} @ ${message.location().url}`)
  })
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`))
  mkdirSync(ARTIFACTS, { recursive: true })
  return {
    context,
    page,
    errors,
    screenshot: async (name) => {
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) })
    },
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
