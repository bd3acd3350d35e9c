/**
 * Lists a kind a page at a time (`limit` + `continue`), as kubectl and
 * client-go's reflectors do, so that a large cluster never passes through
 * the agent as one response: each page is handed on, and can be reduced,
 * before the next is fetched. The pages form one consistent snapshot (the
 * API server serves every page at the first page's resourceVersion).
 */
import type * as k8s from "@kubernetes/client-node";

/** Objects per page: the chunk size of kubectl and client-go. */
export const LIST_PAGE_SIZE = 500;

/** Where a paged list continues: the `limit` per page and the previous page's `continue` token. */
export interface PageRequest {
  limit: number;
  continueToken?: string;
}

/** Fetches one page of a list. */
export type ListPage = (
  request: PageRequest,
) => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;

/** The `continue` token of a page: `_continue` once client-node's typed API has read it, `continue` as sent (custom objects). */
function continueOf(metadata: k8s.V1ListMeta | undefined): string | undefined {
  if (!metadata) return undefined;
  return metadata._continue ?? (metadata as { continue?: string }).continue;
}

/**
 * Lists every object through `listPage`, handing each page's items to
 * `onItems` before fetching the next; returns the snapshot's resourceVersion.
 */
export async function listInPages(
  listPage: ListPage,
  onItems: (items: k8s.KubernetesObject[]) => void,
  pageSize = LIST_PAGE_SIZE,
): Promise<{ resourceVersion: string }> {
  let continueToken: string | undefined;
  let resourceVersion = "";
  do {
    const page = await listPage({ limit: pageSize, continueToken });
    onItems(page.items ?? []);
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    continueToken = continueOf(page.metadata) || undefined;
  } while (continueToken !== undefined);
  return { resourceVersion };
}
