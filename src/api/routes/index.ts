import type { RouteModule } from '../types.js'
import { coreRoutes } from './core.js'
import { debugLogRoutes } from './debug.js'
import { downloadsRoutes } from './downloads.js'
import { guiRoutes } from './gui.js'
import { ipv8Routes } from './ipv8.js'
import { settingsRoutes } from './settings.js'
import { torrentinfoRoutes } from './torrentinfo.js'
import { torrentsRoutes } from './torrents.js'
import { tunnelRoutes } from './tunnel.js'

/** Every route module, mounted in this order. Add a subsystem's module here. */
export const ROUTE_MODULES: readonly RouteModule[] = [
  coreRoutes,
  settingsRoutes,
  debugLogRoutes,
  guiRoutes,
  ipv8Routes,
  torrentsRoutes,
  downloadsRoutes,
  torrentinfoRoutes,
  tunnelRoutes,
]
