/**
 * The cluster dashboard page, served by the registry at `/dashboard/` (CHAT_REGISTRY_WEB=1):
 * the registry's event stream drawn as a ring, a table of nodes and drain progress bars. See
 * packages/web/README.md.
 */
import { dashboardStreamUrl } from '@chat/protocol/dashboard-feed';
import { ColourBook } from './colours';
import { openFeed } from './feed';
import { DashboardView } from './view';

const view = new DashboardView(document, new ColourBook());
openFeed(dashboardStreamUrl(location.search), {
  ring: (ring) => view.showRing(ring),
  state: (state) => view.showState(state),
  status: (status) => view.showStatus(status),
});
